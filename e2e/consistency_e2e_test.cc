// The catalog's consistency promises, checked on real nodes:
//  - Linearizability under faults: concurrent clients, each request to a random node, upload,
//    delete and read a few contended ids while a nemesis kills (-9) and pauses (SIGSTOP) nodes;
//    the history goes to dispotify-lincheck (porcupine, e2e/linearizability/). Prints its seed;
//    DISPOTIFY_LIN_SEED=<n> reruns one, DISPOTIFY_LIN_SECONDS=<s> sets the length.
//  - The stale opt-in is stale: a follower cut off by a proxy answers a deleted song with
//    ?consistency=stale, and the checker rejects that history; without the opt-in it answers 503.
//  - Upload leases: a killed holder's lease lapses; the same content retried through another node
//    takes the lease over at once; a holder paused past its lease cannot commit late.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "e2e/tcp_proxy.h"
#include "tests/node/api/http/test_client.h"
#include "tests/support/audio_files.h"

namespace dispotify::e2e {
namespace {

using api::http::testing::TestClient;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kDefaultSeconds = 15;  // sanitizers run everything several times slower
#else
constexpr int kDefaultSeconds = 60;
#endif

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stoull(v) : fallback;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The value of "key":"..." in a flat JSON answer (enough for sha256 and error codes).
std::string JsonField(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  auto at = body.find(needle);
  if (at == std::string::npos) return {};
  at += needle.size();
  while (at < body.size() && body[at] == ' ') ++at;
  if (at >= body.size() || body[at] != '"') return {};
  ++at;
  auto end = body.find('"', at);
  return end == std::string::npos ? std::string() : body.substr(at, end - at);
}

std::string Base64(const Sha256::Digest& d) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < d.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(d[i]) << 16;
    if (i + 1 < d.size()) v |= static_cast<uint32_t>(d[i + 1]) << 8;
    if (i + 2 < d.size()) v |= d[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < d.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < d.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string ReprDigest(const std::string& data) {
  return "Repr-Digest: sha-256=:" + Base64(Sha256Digest(data)) + ":\r\n";
}

// One operation of a history, as dispotify-lincheck reads it (e2e/linearizability/README.md).
struct Op {
  int client = 0;
  std::string op;  // put | delete | get
  std::string id;
  std::string sha256;
  int status = 0;  // 0: no answer
  std::string error;
  int64_t call_ns = 0;
  int64_t return_ns = 0;
};

class History {
 public:
  void Add(Op op) {
    std::lock_guard lock(mu_);
    ops_.push_back(std::move(op));
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return ops_.size();
  }
  size_t Count(const std::string& op, int status) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& o : ops_) n += o.op == op && o.status == status ? 1 : 0;
    return n;
  }
  void Write(const std::string& path) {
    std::lock_guard lock(mu_);
    std::ofstream out(path);
    for (const auto& o : ops_) {
      out << "{\"client\":" << o.client << ",\"op\":\"" << o.op << "\",\"id\":\"" << o.id
          << "\",\"sha256\":\"" << o.sha256 << "\",\"status\":" << o.status << ",\"error\":\"" << o.error
          << "\",\"call_ns\":" << o.call_ns << ",\"return_ns\":" << o.return_ns << "}\n";
    }
  }

 private:
  std::mutex mu_;
  std::vector<Op> ops_;
};

// Runs the checker on a history file: its exit code (0 linearizable, 1 not) and what it printed.
std::pair<int, std::string> RunLincheck(const std::string& history) {
  std::string tool;
  if (const char* env = std::getenv("DISPOTIFY_LINCHECK")) {
    tool = env;
  } else {
    FILE* p = ::popen(DISPOTIFY_SOURCE_DIR "/scripts/install-test-tools.sh --print-lincheck", "r");
    char line[4096] = {0};
    if (p != nullptr && std::fgets(line, sizeof(line), p) != nullptr) tool = line;
    if (p != nullptr) ::pclose(p);
    while (!tool.empty() && (tool.back() == '\n' || tool.back() == ' ')) tool.pop_back();
  }
  std::string out;
  FILE* p = ::popen((tool + " --timeout 120s " + history + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "cannot run " + tool};
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, tool + ": " + out};
}

// The copies of `id` on disk (blobs/<shard>/<id>: a 256-byte header, then the content; see
// node/replication/blob_store.h) of every node the song's JSON lists as healthy that do not hold
// the song's SHA-256; empty when all do.
std::string HealthyCopiesDiffer(Cluster& c, const std::string& id, const std::string& song_json) {
  const std::string sha = JsonField(song_json, "sha256");
  const std::string shard = Sha256Hex(id).substr(0, 2);
  std::string out;
  for (size_t at = song_json.find("\"node_id\":"); at != std::string::npos;
       at = song_json.find("\"node_id\":", at + 1)) {
    const uint64_t node = std::stoull(song_json.substr(at + 10));
    const auto state_at = song_json.find("\"state\":\"", at);
    if (song_json.compare(state_at + 9, 7, "healthy") != 0) continue;
    std::ifstream in(c.spec(node).data_dir + "/blobs/" + shard + "/" + id, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string blob = bytes.str();
    if (blob.size() < 256 || Sha256Hex(std::string_view(blob).substr(256)) != sha)
      out += "node " + std::to_string(node) + " holds other bytes; ";
  }
  return out;
}

class ConsistencyE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  Cluster& MakeCluster(int n, std::vector<std::string> flags = {}) {
    cluster_ = std::make_unique<Cluster>(n, "consistency");
    std::vector<std::string> common = {"--repair-interval-ms", "500", "--scrub-interval-s", "0"};
    common.insert(common.end(), flags.begin(), flags.end());
    cluster_->SetCommonFlags(common);
    return *cluster_;
  }

  int Port(uint64_t node) { return cluster_->spec(node).http_port; }

  bool WaitReady(uint64_t node) {
    return Eventually(
        [&] {
          auto r = HttpCall(Port(node), "GET", "/readyz");
          return r && r->status == 200;
        },
        20s);
  }

  // Every node is ready and accepts uploads (its health checks have seen the other nodes).
  void WaitUploadsWork(int n) {
    for (uint64_t node = 1; node <= static_cast<uint64_t>(n); ++node) {
      ASSERT_TRUE(WaitReady(node)) << "node " << node;
      const std::string warmup = testing_audio::MakeWav(8000, 1, static_cast<uint32_t>(20 + node));
      std::optional<ClientResponse> r;
      ASSERT_TRUE(Eventually(
          [&] {
            r = Upload(node, "warmup-" + std::to_string(node), warmup);
            return r && r->status / 100 == 2;
          },
          20s))
          << "node " << node << ": " << (r ? r->body : "no answer");
    }
  }

  // Three nodes that accept uploads, started with `flags`; `*leader` is the leader's id.
  void StartThree(std::vector<std::string> flags, uint64_t* leader) {
    Cluster& c = MakeCluster(3, std::move(flags));
    c.StartAll();
    *leader = c.WaitLeader();
    ASSERT_NE(*leader, 0u);
    ASSERT_NO_FATAL_FAILURE(WaitUploadsWork(3));
  }

  // A node other than the leader.
  uint64_t Follower(uint64_t leader) { return leader == 1 ? 2 : 1; }

  std::optional<ClientResponse> Upload(uint64_t node, const std::string& id, const std::string& data,
                                       const std::string& extra_headers = "") {
    return HttpCall(Port(node), "POST", "/music/upload?file_id=" + id + "&filename=" + id + ".wav", data,
                    "Content-Type: audio/wav\r\n" + extra_headers);
  }

  std::unique_ptr<Cluster> cluster_;
};

TEST_F(ConsistencyE2eTest, CatalogHistoryUnderKillsAndPausesIsLinearizable) {
  const uint64_t seed = EnvOr("DISPOTIFY_LIN_SEED", std::random_device{}());
  const auto seconds = std::chrono::seconds(EnvOr("DISPOTIFY_LIN_SECONDS", kDefaultSeconds));
  std::printf("linearizability: seed %llu (rerun with DISPOTIFY_LIN_SEED=%llu), %llds\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
              static_cast<long long>(seconds.count()));
  Cluster& c = MakeCluster(3, {"--upload-lock-ttl-ms", "3000", "--read-timeout-ms", "2000"});
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_NO_FATAL_FAILURE(WaitUploadsWork(3));

  // A few contended ids, each with a few possible contents (distinct WAV files).
  constexpr int kIds = 3;
  constexpr int kVersions = 3;
  std::vector<std::vector<std::string>> contents(kIds);
  for (int i = 0; i < kIds; ++i) {
    for (int v = 0; v < kVersions; ++v)
      contents[i].push_back(testing_audio::MakeWav(8000, 1, static_cast<uint32_t>(100 + 37 * i + 11 * v)));
  }

  History history;
  const auto end = Clock::now() + seconds;
  std::atomic<bool> stop{false};
  constexpr int kClients = 6;
  std::vector<std::thread> clients;
  for (int client = 0; client < kClients; ++client) {
    clients.emplace_back([&, client] {
      std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(client));
      // A call without an answer may still take effect later: the client goes on under a new
      // number, so that each number has at most one call in flight.
      int number = client;
      while (!stop && Clock::now() < end) {
        const int i = static_cast<int>(rng() % kIds);
        const std::string id = "lin-" + std::to_string(i);
        const uint64_t node = 1 + rng() % 3;
        const int dice = static_cast<int>(rng() % 100);
        Op op;
        op.client = number;
        op.id = id;
        op.call_ns = NowNs();
        TestClient conn(static_cast<uint16_t>(Port(node)), 6000);
        std::optional<ClientResponse> r;
        std::string request;
        std::string body;
        if (dice < 40) {
          op.op = "get";
          request = "GET /music/songs/" + id + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        } else if (dice < 75) {
          op.op = "put";
          body = contents[i][rng() % kVersions];
          op.sha256 = Sha256Hex(body);
          request = "POST /music/upload?file_id=" + id + "&filename=" + id +
                    ".wav HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: audio/wav\r\n" +
                    "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        } else {
          op.op = "delete";
          request = "DELETE /music/songs/" + id + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        }
        if (conn.connected() && conn.Send(request)) r = conn.ReadResponse(false);
        op.return_ns = NowNs();
        if (!r || r->status >= 500) number += kClients;
        if (r) {
          op.status = r->status;
          op.error = JsonField(r->body, "code");
          if (op.op == "get" && r->status == 200) op.sha256 = JsonField(r->body, "sha256");
        }
        history.Add(std::move(op));
      }
    });
  }

  // The nemesis: one node at a time is killed and restarted, or paused and resumed.
  std::mt19937_64 rng(seed);
  int kills = 0;
  int pauses = 0;
  while (Clock::now() + 4s < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1500));
    const uint64_t victim = 1 + rng() % 3;
    const auto down = std::chrono::milliseconds(300 + rng() % 2200);
    if (rng() % 2 == 0) {
      c.Kill9(victim);
      std::this_thread::sleep_for(down);
      c.Start(victim);
      ++kills;
    } else {
      c.process(victim)->Signal(SIGSTOP);
      std::this_thread::sleep_for(down);
      c.process(victim)->Signal(SIGCONT);
      ++pauses;
    }
  }
  stop = true;
  for (auto& t : clients) t.join();

  // Every copy the catalog calls healthy holds the bytes the catalog names, on disk: no upload
  // that lost its lease replaced another's copies (the history checks the catalog only).
  for (uint64_t node = 1; node <= 3; ++node) ASSERT_TRUE(WaitReady(node)) << "node " << node;
  for (int i = 0; i < kIds; ++i) {
    const std::string id = "lin-" + std::to_string(i);
    std::string why;
    EXPECT_TRUE(Eventually(
        [&] {
          auto song = HttpCall(Port(1), "GET", "/music/songs/" + id);
          if (!song || (song->status != 200 && song->status != 404)) return false;
          if (song->status == 404) return true;
          why = HealthyCopiesDiffer(c, id, song->body);
          return why.empty();
        },
        20s))
        << id << ": " << why;
  }

  const std::string path = c.base_dir() + "/history.jsonl";
  history.Write(path);
  const size_t gets_ok = history.Count("get", 200) + history.Count("get", 404);
  const size_t puts_ok = history.Count("put", 201) + history.Count("put", 200);
  const size_t deletes_ok = history.Count("delete", 204);
  std::printf(
      "linearizability: %zu operations (%zu reads answered, %zu uploads stored, %zu deletes), "
      "%d kills, %d pauses; history in %s\n",
      history.size(), gets_ok, puts_ok, deletes_ok, kills, pauses, path.c_str());
  // Not a vacuous history: the cluster made progress through the faults.
  EXPECT_GE(gets_ok, 20u);
  EXPECT_GE(puts_ok, 10u);
  EXPECT_GE(deletes_ok, 5u);
  auto [rc, out] = RunLincheck(path);
  std::printf("%s\n", out.c_str());
  EXPECT_EQ(rc, 0) << "seed " << seed << ": " << out;
}

TEST_F(ConsistencyE2eTest, StaleOptInOnACutOffFollowerIsStaleAndTheCheckerSaysSo) {
  Cluster& c = MakeCluster(3);
  // Node 3's Raft traffic comes in through a proxy the test can cut ("a dropped port").
  TcpProxy proxy(c.spec(3).port);
  c.spec(3).peer_port = proxy.port();
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_NO_FATAL_FAILURE(WaitUploadsWork(3));
  if (leader == 3) {
    auto moved = HttpCall(Port(3), "POST", "/admin/leadership", "{\"target\":1}",
                          "Content-Type: application/json\r\n");
    ASSERT_TRUE(moved && moved->status / 100 == 2) << (moved ? moved->body : "no answer");
    leader = c.WaitLeader(20s, 3);
    ASSERT_NE(leader, 0u);
  }

  History history;
  const std::string data = testing_audio::MakeWav(8000, 1, 250);
  const std::string sha = Sha256Hex(data);
  Op put{0, "put", "stale-1", sha, 0, "", NowNs(), 0};
  auto up = Upload(leader, "stale-1", data);
  put.return_ns = NowNs();
  ASSERT_TRUE(up && up->status == 201) << (up ? up->body : "no answer");
  put.status = up->status;
  history.Add(put);
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = HttpCall(Port(3), "GET", "/music/songs/stale-1?consistency=stale");
        return r && r->status == 200;
      },
      10s))
      << "node 3 never applied the upload";

  proxy.Cut();
  Op del{1, "delete", "stale-1", "", 0, "", NowNs(), 0};
  auto gone = HttpCall(Port(leader), "DELETE", "/music/songs/stale-1");
  del.return_ns = NowNs();
  ASSERT_TRUE(gone && gone->status == 204) << (gone ? gone->body : "no answer");
  del.status = 204;
  history.Add(del);

  // With the opt-in, the cut-off follower answers from its own catalog: the song it still has.
  Op read{2, "get", "stale-1", "", 0, "", NowNs(), 0};
  auto stale = HttpCall(Port(3), "GET", "/music/songs/stale-1?consistency=stale");
  read.return_ns = NowNs();
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200) << stale->body;
  EXPECT_EQ(stale->Header("dispotify-consistency"), "stale");
  read.status = stale->status;
  read.sha256 = JsonField(stale->body, "sha256");
  history.Add(read);
  const std::string path = c.base_dir() + "/stale-history.jsonl";
  history.Write(path);
  auto [rc, out] = RunLincheck(path);
  EXPECT_EQ(rc, 1) << "the checker must reject a read of a deleted song: " << out;

  // Without it, the follower cannot confirm the latest state: 503 with Retry-After, never the song.
  auto linear = HttpCall(Port(3), "GET", "/music/songs/stale-1");
  ASSERT_TRUE(linear);
  EXPECT_EQ(linear->status, 503) << linear->body;
  EXPECT_FALSE(linear->Header("retry-after").empty());
  for (const std::string target : {"/music/songs", "/music/search?q=stale", "/music/stream/stale-1"}) {
    auto r = HttpCall(Port(3), "GET", target);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << target << ": " << r->body;
  }

  proxy.Restore();
  EXPECT_TRUE(Eventually(
      [&] {
        auto r = HttpCall(Port(3), "GET", "/music/songs/stale-1");
        return r && r->status == 404;
      },
      20s))
      << "node 3 never caught up once reconnected";
}

// True once an upload on `node` has read body bytes into its spool file: it reads the body only
// after it took its lease. (Probing with another upload would race the first one for the lease.)
bool UploadUnderWay(Cluster& c, uint64_t node) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(c.spec(node).data_dir + "/spool", ec)) {
    if (entry.file_size(ec) > 0) return true;
  }
  return false;
}

// Sends the head and the first `sent` bytes of a raw upload whose Content-Length is the whole of
// `data`; the rest is for the caller to send (or never).
std::unique_ptr<TestClient> StartUpload(int port, const std::string& id, const std::string& data, size_t sent,
                                        const std::string& extra_headers = "") {
  auto client = std::make_unique<TestClient>(static_cast<uint16_t>(port), 30000);
  const std::string head = "POST /music/upload?file_id=" + id + "&filename=" + id +
                           ".wav HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: audio/wav\r\n" +
                           extra_headers + "Content-Length: " + std::to_string(data.size()) + "\r\n\r\n";
  if (!client->connected() || !client->Send(head) || !client->Send(std::string_view(data).substr(0, sent)))
    return nullptr;
  return client;
}

TEST_F(ConsistencyE2eTest, AKilledHoldersLeaseLapses) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartThree({"--upload-lock-ttl-ms", "5000"}, &leader));
  Cluster& c = *cluster_;
  const uint64_t holder = Follower(leader);
  const std::string a = testing_audio::MakeWav(44100, 2, 3000);  // ~500 KiB: more than a piece
  const std::string b = testing_audio::MakeWav(44100, 2, 2000);
  auto first = StartUpload(Port(holder), "lease-1", a, a.size() / 2);
  ASSERT_TRUE(first);
  // The holder takes the lease before it reads the body; it holds it while bytes flow.
  ASSERT_TRUE(Eventually([&] { return UploadUnderWay(c, holder); }, 10s));
  auto second = Upload(leader, "lease-1", b);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 409)
      << "a second upload of the id must wait while the first one holds the lease: " << second->body;
  EXPECT_EQ(JsonField(second->body, "code"), "conflict");
  c.Kill9(holder);
  const auto killed = Clock::now();
  std::optional<ClientResponse> r;
  ASSERT_TRUE(Eventually(
      [&] {
        r = Upload(leader, "lease-1", b);
        return r && r->status == 201;
      },
      15s))
      << (r ? r->body : "no answer");
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  std::printf("lease: the id uploaded again %lld ms after its holder was killed (TTL 5000 ms)\n",
              static_cast<long long>(waited.count()));
  EXPECT_LT(waited, 30s) << "the lease must lapse after its TTL, not after the old 10 minutes";
  EXPECT_EQ(JsonField(r->body, "sha256"), Sha256Hex(b));
}

TEST_F(ConsistencyE2eTest, TheSameContentRetriedThroughAnotherNodeTakesTheLeaseOverAtOnce) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartThree({"--upload-lock-ttl-ms", "60000"}, &leader));
  const uint64_t first_node = Follower(leader);
  const std::string a = testing_audio::MakeWav(44100, 2, 3000);
  const std::string b = testing_audio::MakeWav(44100, 2, 2000);
  // A first attempt stalls half-way (a client whose link died), holding a lease of a minute.
  auto first = StartUpload(Port(first_node), "retry-1", a, a.size() / 2, ReprDigest(a));
  ASSERT_TRUE(first);
  ASSERT_TRUE(Eventually([&] { return UploadUnderWay(*cluster_, first_node); }, 10s));
  auto other = Upload(leader, "retry-1", b, ReprDigest(b));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 409) << "other content must wait for the lease: " << other->body;
  // The retry of the same bytes, through another node, does not wait a minute.
  const auto start = Clock::now();
  auto retry = Upload(leader, "retry-1", a, ReprDigest(a));
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 201) << retry->body;
  EXPECT_LT(Clock::now() - start, 10s);
  // The first attempt, resumed, was fenced off: it cannot commit, and the stored song is intact.
  ASSERT_TRUE(first->Send(std::string_view(a).substr(a.size() / 2)));
  auto late = first->ReadResponse(false);
  ASSERT_TRUE(late);
  EXPECT_NE(late->status, 201) << late->body;
  for (uint64_t n = 1; n <= 3; ++n) {
    auto s = HttpCall(Port(n), "GET", "/music/stream/retry-1");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->status, 200);
    EXPECT_TRUE(s->body == a) << "node " << n << " streamed other bytes";
  }
}

TEST_F(ConsistencyE2eTest, AHolderPausedPastItsLeaseCannotCommitLate) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartThree({"--upload-lock-ttl-ms", "3000"}, &leader));
  Cluster& c = *cluster_;
  const uint64_t holder = Follower(leader);
  const std::string a = testing_audio::MakeWav(44100, 2, 3000);
  const std::string b = testing_audio::MakeWav(44100, 2, 2000);
  auto first = StartUpload(Port(holder), "pause-1", a, a.size() - 1);
  ASSERT_TRUE(first);
  ASSERT_TRUE(Eventually([&] { return UploadUnderWay(c, holder); }, 10s));
  c.process(holder)->Signal(SIGSTOP);
  ASSERT_TRUE(first->Send(std::string_view(a).substr(a.size() - 1)));  // waits in the socket
  std::optional<ClientResponse> other;
  ASSERT_TRUE(Eventually(
      [&] {
        other = Upload(leader, "pause-1", b);
        return other && other->status == 201;
      },
      20s))
      << (other ? other->body : "no answer");
  c.process(holder)->Signal(SIGCONT);
  auto late = first->ReadResponse(false);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 409) << late->body;
  EXPECT_EQ(JsonField(late->body, "code"), "conflict") << late->body;
  // The song is the one that committed under a live lease, byte for byte, through every node.
  // (A node just resumed may need a moment to confirm the latest state: 503 until then.)
  for (uint64_t n = 1; n <= 3; ++n) {
    std::optional<ClientResponse> song;
    ASSERT_TRUE(Eventually(
        [&] {
          song = HttpCall(Port(n), "GET", "/music/songs/pause-1");
          return song && song->status == 200;
        },
        20s));
    EXPECT_EQ(JsonField(song->body, "sha256"), Sha256Hex(b)) << "node " << n;
    std::optional<ClientResponse> s;
    ASSERT_TRUE(Eventually(
        [&] {
          s = HttpCall(Port(n), "GET", "/music/stream/pause-1");
          return s && s->status == 200;
        },
        20s));
    EXPECT_TRUE(s->body == b) << "node " << n << " streamed other bytes";
  }
}

}  // namespace
}  // namespace dispotify::e2e
