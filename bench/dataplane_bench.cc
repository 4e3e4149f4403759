// Data-plane figures with real dispotify-node processes on loopback (same harness as the e2e
// tests): upload throughput with R=3, repair after the loss of a node, and the fraction of copies
// that move when a 4th and a 5th node join. Prints one line per figure; asserts nothing.
//
//   dispotify-dataplane-bench [--total-mib 1024] [--file-mib 16] [--rebalance-files 300]
//                             [--only rebalance,repair,encryption,https,mtls] [--enc-file-mib 64]
//                             [--enc-files 2]
//                             [--enc-seconds 5]
//                             [--repair-bytes-per-s N]   (the nodes' repair throttle; 0 = none)
//
// Repair: 4 nodes, R=3, --total-mib of files; a node that is not the leader is killed (kill -9)
// and removed from the cluster; the time is from the removal until every song has R healthy
// copies on the remaining members again.
// Rebalance: 3 nodes, R=3, --rebalance-files small files; node 4 joins (registers as a learner;
// its share moves to it), then node 5; after each join, copies made / copies in all.
// Ideal fractions: R/N of the files gain the new node, i.e. 1/N of all copies move.
// Encryption at rest: two one-node clusters started side by side, one plain and one with a keyring
// (encryption_keyring_file); the same --enc-file-mib MP3s (random frame payloads) uploaded through
// REST to each (upload MB/s), then streamed back for --enc-seconds per case: full reads and 1 MiB
// Range reads at random offsets, with 1 and 4 clients (keep-alive connections, bodies read into
// user space and discarded). Plain streams go out with sendfile; sealed ones are decrypted chunk
// by chunk into the send buffer. Each case prints MB/s off and on and the ratio on/off; the last
// line is the mean ratio of the stream cases:
//   encryption: stream_ratio=<on/off> upload_ratio=<on/off>
//
// HTTPS: the same files and cases on four one-node clusters in one run: plain HTTP, HTTPS (TLS on
// the REST port), encryption at rest, both; MB/s of each and its ratio to plain (HttpsFigure).
// mTLS: uploads with R = 3 to a 3-node cluster with plaintext gRPC and to one with mutual TLS, in
// one run (MtlsFigure).
//
//   --only rebalance,repair,encryption,https,mtls (default: the first three; https and mtls only
//   when named)

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/tls/client_conn.h"
#include "common/tls/file_watch.h"
#include "dispotify/v1/cluster.grpc.pb.h"
#include "e2e/cluster_harness.h"
#include "e2e/files_client.h"
#include "node/replication/placement.h"
#include "tests/support/audio_files.h"

namespace {

using namespace std::chrono_literals;
using dispotify::e2e::Cluster;
using dispotify::e2e::FilesClient;
using dispotify::e2e::HealthyReplicas;
using Clock = std::chrono::steady_clock;

struct Options {
  uint64_t total_mib = 1024;
  uint64_t file_mib = 16;
  int rebalance_files = 300;
  std::string repair_bytes_per_s = "0";
  std::string only = "rebalance,repair,encryption";
  uint64_t enc_file_mib = 64;
  int enc_files = 2;
  double enc_seconds = 5;
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "dataplane-bench: %s\n", why.c_str());
  std::exit(1);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Polls until every listed song has `r` healthy copies, all on `members`.
bool WaitReplicated(FilesClient& client, const std::vector<std::string>& ids, size_t r,
                    const std::set<uint64_t>& members, std::chrono::seconds timeout) {
  const auto end = Clock::now() + timeout;
  do {
    bool done = true;
    for (const auto& id : ids) {
      auto song = client.GetSong(id);
      if (!song || static_cast<size_t>(song->replicas_size()) != r) {
        done = false;
        break;
      }
      auto healthy = HealthyReplicas(*song);
      if (healthy.size() != r) {
        done = false;
        break;
      }
      for (uint64_t n : healthy) done = done && members.contains(n);
      if (!done) break;
    }
    if (done) return true;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < end);
  return false;
}

bool Remove(Cluster& c, uint64_t leader, uint64_t id) {
  auto stub =
      dispotify::v1::Cluster::NewStub(grpc::CreateChannel(c.spec(leader).address(), c.ChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  dispotify::v1::MembershipRequest req;
  req.set_op(dispotify::v1::MembershipRequest::REMOVE);
  req.set_node_id(id);
  dispotify::v1::MembershipResponse resp;
  return stub->ChangeMembership(&ctx, req, &resp).ok();
}

std::vector<std::string> CommonFlags(const Options& o) {
  return {"--repair-interval-ms", "200",
          "--scrub-interval-s",   "0",
          "--repair-bytes-per-s", o.repair_bytes_per_s,
          "--log-level",          "warning"};
}

void RepairFigure(const Options& o) {
  Cluster c(4, "bench-repair");
  c.SetCommonFlags(CommonFlags(o));
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  if (leader == 0) Die("no leader");
  FilesClient client(c.spec(leader).address(), c.ChannelCredentials());
  const uint64_t files = std::max<uint64_t>(1, o.total_mib / o.file_mib);
  std::vector<std::string> ids;
  const auto up_start = Clock::now();
  for (uint64_t i = 0; i < files; ++i) {
    std::string id = "repair-" + std::to_string(i);
    auto st = client.UploadEventually(id, RandomBytes(o.file_mib << 20, static_cast<uint32_t>(i)));
    if (!st.ok()) Die("upload failed: " + st.error_message());
    ids.push_back(id);
  }
  const double up_s = Seconds(Clock::now() - up_start);
  std::printf("upload: files=%lu file_mib=%lu R=3 nodes=4 seconds=%.2f MBps=%.1f\n",
              static_cast<unsigned long>(files), static_cast<unsigned long>(o.file_mib), up_s,
              static_cast<double>(files * (o.file_mib << 20)) / 1e6 / up_s);
  if (!WaitReplicated(client, ids, 3, {1, 2, 3, 4}, 600s)) Die("files never reached R=3");

  uint64_t victim = leader == 4 ? 3 : 4;
  auto before = client.DataPlaneStatus();
  c.Kill9(victim);
  const auto start = Clock::now();
  if (!Remove(c, leader, victim)) Die("could not remove the dead node");
  std::set<uint64_t> members = {1, 2, 3, 4};
  members.erase(victim);
  if (!WaitReplicated(client, ids, 3, members, 1800s)) Die("repair did not finish");
  const double secs = Seconds(Clock::now() - start);
  auto after = client.DataPlaneStatus();
  const uint64_t bytes = after && before ? after->bytes_copied() - before->bytes_copied() : 0;
  std::printf(
      "repair: lost_node_data_mib=%.0f bytes_copied=%lu seconds=%.2f MBps=%.1f throttle=%s total_mib=%lu\n",
      static_cast<double>(bytes) / (1 << 20), static_cast<unsigned long>(bytes), secs,
      static_cast<double>(bytes) / 1e6 / secs, o.repair_bytes_per_s.c_str(),
      static_cast<unsigned long>(o.total_mib));
}

void RebalanceFigure(const Options& o) {
  Cluster c(3, "bench-rebalance");
  c.SetCommonFlags(CommonFlags(o));
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  if (leader == 0) Die("no leader");
  FilesClient client(c.spec(leader).address(), c.ChannelCredentials());
  std::vector<std::string> ids;
  for (int i = 0; i < o.rebalance_files; ++i) {
    std::string id = "rebalance-" + std::to_string(i);
    auto st = client.UploadEventually(id, RandomBytes(16 * 1024, static_cast<uint32_t>(i)));
    if (!st.ok()) Die("upload failed: " + st.error_message());
    ids.push_back(id);
  }
  std::set<uint64_t> members = {1, 2, 3};
  if (!WaitReplicated(client, ids, 3, members, 120s)) Die("files never reached R=3");
  for (int join = 4; join <= 5; ++join) {
    uint64_t id = c.AddSpec();
    auto before = client.DataPlaneStatus();
    const auto start = Clock::now();
    c.Start(id, {"--join"}, 3);
    members.insert(id);
    // Where the ring puts each file once the new node is a member: it should hold exactly those.
    std::vector<dispotify::NodeId> ring_nodes;
    for (uint64_t m : members) ring_nodes.emplace_back(m);
    dispotify::replication::PlacementRing ring(ring_nodes);
    uint64_t expected = 0;
    for (const auto& f : ids) {
      for (auto n : ring.Placement(f, 3)) expected += n.value() == id ? 1 : 0;
    }
    FilesClient joined(c.spec(id).address(), c.ChannelCredentials());
    bool settled = false;
    while (Clock::now() - start < 300s && !settled) {
      std::this_thread::sleep_for(200ms);
      auto st = joined.DataPlaneStatus();
      settled = st && st->local_files() == expected && WaitReplicated(client, ids, 3, members, 0s);
    }
    auto after = client.DataPlaneStatus();
    if (!settled || !before || !after) Die("rebalance did not settle");
    const uint64_t moved = after->copies_made() - before->copies_made();
    const double total = 3.0 * static_cast<double>(ids.size());
    std::printf("rebalance: join=%d files=%zu copies_moved=%lu fraction=%.3f ideal=%.3f seconds=%.2f\n", join,
                ids.size(), static_cast<unsigned long>(moved), static_cast<double>(moved) / total, 1.0 / join,
                Seconds(Clock::now() - start));
  }
}

// --- encryption at rest -----------------------------------------------------------------------

// One keep-alive HTTP/1.1 connection to 127.0.0.1:port, plaintext or (with `tls`) HTTPS through
// OpenSSL (common/tls/client_conn.h: the same library and record handling as any HTTPS client);
// just enough client for the figures.
class HttpConn {
 public:
  explicit HttpConn(int port, SSL_CTX* tls = nullptr) : port_(port), tls_(tls), buf_(1 << 20) {}
  ~HttpConn() { Close(); }
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  // Sends `head` (and `body`), reads the answer; returns the status and the body's size (the body
  // itself is discarded), nullopt on a broken connection.
  std::optional<std::pair<int, uint64_t>> Call(const std::string& head, std::string_view body = {}) {
    if (!connected() && !Connect()) return std::nullopt;
    if (!SendAll(head) || !SendAll(body)) return Fail();
    size_t have = 0;
    size_t end = std::string_view::npos;
    while (end == std::string_view::npos) {
      if (have == buf_.size()) return Fail();
      ssize_t n = Recv(buf_.data() + have, buf_.size() - have);
      if (n <= 0) return Fail();
      have += static_cast<size_t>(n);
      end = std::string_view(buf_.data(), have).find("\r\n\r\n");
    }
    const std::string h(buf_.data(), end + 4);
    const int status = std::atoi(h.c_str() + 9);
    uint64_t length = 0;
    for (const char* key : {"Content-Length: ", "content-length: "}) {
      auto at = h.find(key);
      if (at != std::string::npos) length = std::strtoull(h.c_str() + at + std::strlen(key), nullptr, 10);
    }
    const uint64_t early = have - h.size();  // body bytes that came with the head
    if (early > length) return Fail();       // no pipelining here: more than the body is a bug
    for (uint64_t left = length - early; left > 0;) {
      ssize_t n = Recv(buf_.data(), std::min<uint64_t>(left, buf_.size()));
      if (n <= 0) return Fail();
      left -= static_cast<uint64_t>(n);
    }
    return std::make_pair(status, length);
  }

 private:
  bool connected() const { return fd_ >= 0 || tls_conn_ != nullptr; }
  bool Connect() {
    if (tls_ != nullptr) {
      auto conn = dispotify::tls::TlsClientConn::Connect("127.0.0.1", static_cast<uint16_t>(port_), tls_,
                                                         "127.0.0.1", std::chrono::seconds(60));
      if (!conn.ok()) return false;
      tls_conn_ = std::move(conn).value();
      return true;
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return true;
  }
  ssize_t Recv(char* buf, size_t n) {
    if (tls_conn_) {
      auto got = tls_conn_->Read(buf, n);
      return got.ok() ? static_cast<ssize_t>(*got) : -1;
    }
    return ::recv(fd_, buf, n, 0);
  }
  bool SendAll(std::string_view data) {
    if (tls_conn_) return data.empty() || tls_conn_->WriteAll(data).ok();
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  std::nullopt_t Fail() {
    Close();
    return std::nullopt;
  }
  void Close() {
    tls_conn_.reset();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int port_;
  SSL_CTX* tls_;
  int fd_ = -1;
  std::unique_ptr<dispotify::tls::TlsClientConn> tls_conn_;
  std::vector<char> buf_;
};

// An MP3 of about `bytes` (valid tag and frame headers) whose frames carry random payload.
std::string NoisyMp3(uint64_t bytes, uint64_t seed) {
  const int frames = static_cast<int>(bytes / dispotify::testing_audio::kMp3FrameBytes);
  std::string mp3 = dispotify::testing_audio::MakeMp3("Bench", frames);
  std::mt19937_64 rng(seed);
  const size_t audio = mp3.size() - static_cast<size_t>(frames) * dispotify::testing_audio::kMp3FrameBytes;
  for (size_t f = audio; f < mp3.size(); f += dispotify::testing_audio::kMp3FrameBytes) {
    for (size_t i = f + 4; i < f + dispotify::testing_audio::kMp3FrameBytes; ++i)
      mp3[i] = static_cast<char>(rng());
  }
  return mp3;
}

// Streams `ids` (each `size` bytes) from `port` with `clients` connections for `seconds`: whole
// files, or 1 MiB ranges at random offsets. Returns MB/s of bodies.
double StreamMBps(int port, const std::vector<std::string>& ids, uint64_t size, int clients, bool ranges,
                  double seconds, SSL_CTX* tls = nullptr) {
  constexpr uint64_t kRange = 1 << 20;
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      HttpConn conn(port, tls);
      std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
      for (uint64_t i = 0; Clock::now() < end; ++i) {
        const std::string& id = ids[(i + static_cast<uint64_t>(t)) % ids.size()];
        std::string head = "GET /music/stream/" + id + " HTTP/1.1\r\nHost: bench\r\n";
        uint64_t want = size;
        if (ranges) {
          const uint64_t first = rng() % (size - kRange);
          head += "Range: bytes=" + std::to_string(first) + "-" + std::to_string(first + kRange - 1) + "\r\n";
          want = kRange;
        }
        auto r = conn.Call(head + "\r\n");
        if (!r || r->second != want || (r->first != 200 && r->first != 206)) {
          failed = true;
          return;
        }
        bytes += r->second;
      }
    });
  }
  for (auto& th : threads) th.join();
  if (failed) Die("a stream request failed");
  return static_cast<double>(bytes.load()) / 1e6 / Seconds(Clock::now() - start);
}

// Uploads `contents` as `ids` through one keep-alive connection; MB/s of bodies.
double UploadMBps(int port, SSL_CTX* tls, const std::vector<std::string>& ids,
                  const std::vector<std::string>& contents, const std::string& what) {
  HttpConn conn(port, tls);
  uint64_t bytes = 0;
  const auto start = Clock::now();
  for (size_t f = 0; f < ids.size(); ++f) {
    const std::string head = "POST /music/upload?filename=" + ids[f] +
                             " HTTP/1.1\r\nHost: bench\r\nContent-Type: audio/mpeg\r\nContent-Length: " +
                             std::to_string(contents[f].size()) + "\r\n\r\n";
    std::optional<std::pair<int, uint64_t>> r;
    for (int attempt = 0; attempt < 100; ++attempt) {  // 503 until the node is ready
      r = conn.Call(head, contents[f]);
      if (r && r->first != 503) break;
      std::this_thread::sleep_for(200ms);
    }
    if (!r || r->first != 201) Die("upload to the " + what + " node failed");
    bytes += contents[f].size();
  }
  return static_cast<double>(bytes) / 1e6 / Seconds(Clock::now() - start);
}

// The files both figures below upload: o.enc_files noisy MP3s of o.enc_file_mib MiB each.
struct BenchFiles {
  std::vector<std::string> ids;
  std::vector<std::string> contents;
};
BenchFiles MakeBenchFiles(const std::string& prefix, const Options& o) {
  BenchFiles files;
  for (int f = 0; f < o.enc_files; ++f) {
    files.ids.push_back(prefix + "-" + std::to_string(f) + ".mp3");
    files.contents.push_back(NoisyMp3(o.enc_file_mib << 20, static_cast<uint64_t>(f) + 1));
  }
  return files;
}

// Gives node 1 of `cluster` an encryption keyring (encryption at rest on).
void GiveKeyring(Cluster& cluster) {
  const std::string keyring = cluster.base_dir() + "/keyring";
  dispotify::e2e::WriteKeyringFile(keyring, {"bench-1"});
  cluster.spec(1).keyring_file = keyring;
}

// Starts the one-node `cluster` with `flags`; its REST port.
int StartOneNode(Cluster& cluster, std::vector<std::string> flags) {
  cluster.SetCommonFlags(std::move(flags));
  cluster.StartAll();
  if (cluster.WaitLeader() == 0) Die("no leader");
  return cluster.spec(1).http_port;
}

void EncryptionFigure(const Options& o) {
  struct Side {
    const char* name;
    std::unique_ptr<Cluster> cluster;
    int port = 0;
    double upload_mbps = 0;
  };
  Side sides[2] = {{"off", nullptr}, {"on", nullptr}};
  for (int i = 0; i < 2; ++i) {
    Side& side = sides[i];
    side.cluster = std::make_unique<Cluster>(1, std::string("bench-enc-") + side.name);
    std::vector<std::string> flags = {"--replication-factor", "1",      "--scrub-interval-s", "0",
                                      "--log-level",          "warning"};
    if (i == 1) GiveKeyring(*side.cluster);
    side.port = StartOneNode(*side.cluster, flags);
  }
  const BenchFiles files = MakeBenchFiles("enc", o);
  const std::vector<std::string>& ids = files.ids;
  const std::vector<std::string>& contents = files.contents;
  const uint64_t size = contents[0].size();
  for (Side& side : sides) {
    side.upload_mbps = UploadMBps(side.port, nullptr, ids, contents, std::string("encryption-") + side.name);
  }
  std::printf("encryption upload: files=%zu file_mib=%lu R=1 off_MBps=%.1f on_MBps=%.1f ratio=%.3f\n",
              ids.size(), static_cast<unsigned long>(o.enc_file_mib), sides[0].upload_mbps,
              sides[1].upload_mbps, sides[1].upload_mbps / sides[0].upload_mbps);
  // One warm-up pass each (page cache, the store's verified-copy memo), then the cases.
  for (Side& side : sides) StreamMBps(side.port, ids, size, 1, false, 1.0);
  double ratio_sum = 0;
  int cases = 0;
  for (bool ranges : {false, true}) {
    for (int clients : {1, 4}) {
      const double off = StreamMBps(sides[0].port, ids, size, clients, ranges, o.enc_seconds);
      const double on = StreamMBps(sides[1].port, ids, size, clients, ranges, o.enc_seconds);
      std::printf("encryption stream: %s clients=%d off_MBps=%.1f on_MBps=%.1f ratio=%.3f\n",
                  ranges ? "range_1MiB" : "full", clients, off, on, on / off);
      ratio_sum += on / off;
      ++cases;
    }
  }
  std::printf("encryption: stream_ratio=%.3f upload_ratio=%.3f\n", ratio_sum / cases,
              sides[1].upload_mbps / sides[0].upload_mbps);
}

// --- HTTPS (TLS on the REST port) and encryption at rest, in one run --------------------------

// Four one-node clusters side by side: plain HTTP, HTTPS, plain HTTP with encryption at rest,
// HTTPS with encryption at rest (auth off on all four: the figure is the data path's). The same
// files are uploaded to each, then streamed like the encryption figure, the four sides measured
// one after the other within each case. HTTPS clients are OpenSSL (TLS 1.3 with AES-128-GCM, the
// server's first choice) on the same machine, so the client's decryption shares the cores with the
// server's encryption; a remote client would leave the server more CPU.
//   https upload: <side> MBps=... ratio=<side/plain>
//   https stream: full|range_1MiB clients=N plain=... tls=... (ratio) enc=... (ratio) tls+enc=... (ratio)
void HttpsFigure(const Options& o) {
  struct Side {
    const char* name;
    bool tls;
    bool enc;
    std::unique_ptr<Cluster> cluster;
    int port = 0;
    dispotify::tls::SharedSslCtx client;
    double upload_mbps = 0;
  };
  Side sides[4] = {
      {"plain", false, false}, {"tls", true, false}, {"enc", false, true}, {"tls+enc", true, true}};
  for (Side& side : sides) {
    side.cluster = std::make_unique<Cluster>(
        1, std::string("bench-https-") + (side.tls ? "tls" : "plain") + (side.enc ? "-enc" : ""));
    std::vector<std::string> flags = {
        "--replication-factor", "1", "--scrub-interval-s", "0", "--log-level", "warning", "--auth", "false"};
    if (side.enc) GiveKeyring(*side.cluster);
    if (side.tls) {
      auto [cert, key] = side.cluster->IssueCertificate(1, "https");
      flags.insert(flags.end(), {"--http-tls-cert-file", cert, "--http-tls-key-file", key});
      auto ca = dispotify::tls::ReadSmallFile(side.cluster->TlsCaPath());
      if (!ca.ok()) Die(ca.status().ToString());
      auto ctx = dispotify::tls::NewClientContext(*ca);
      if (!ctx.ok()) Die(ctx.status().ToString());
      side.client = std::move(ctx).value();
    }
    side.port = StartOneNode(*side.cluster, flags);
  }
  const BenchFiles files = MakeBenchFiles("https", o);
  const std::vector<std::string>& ids = files.ids;
  const std::vector<std::string>& contents = files.contents;
  const uint64_t size = contents[0].size();
  // A small upload first on each side: the first one pays for cold caches (the tagger binary, the
  // catalog's pages), which would count against whichever side goes first.
  for (Side& side : sides) {
    UploadMBps(side.port, side.client.get(), {"warm-up.mp3"}, {NoisyMp3(1 << 20, 99)},
               std::string("https-") + side.name);
  }
  for (Side& side : sides) {
    side.upload_mbps =
        UploadMBps(side.port, side.client.get(), ids, contents, std::string("https-") + side.name);
  }
  for (const Side& side : sides) {
    std::printf("https upload: %s files=%zu file_mib=%lu R=1 MBps=%.1f ratio=%.3f\n", side.name, ids.size(),
                static_cast<unsigned long>(o.enc_file_mib), side.upload_mbps,
                side.upload_mbps / sides[0].upload_mbps);
  }
  for (Side& side : sides) StreamMBps(side.port, ids, size, 1, false, 1.0, side.client.get());  // warm-up
  for (bool ranges : {false, true}) {
    for (int clients : {1, 4}) {
      double mbps[4];
      for (int i = 0; i < 4; ++i)
        mbps[i] = StreamMBps(sides[i].port, ids, size, clients, ranges, o.enc_seconds, sides[i].client.get());
      std::printf(
          "https stream: %s clients=%d plain=%.1f tls=%.1f (%.3f) enc=%.1f (%.3f) tls+enc=%.1f (%.3f)\n",
          ranges ? "range_1MiB" : "full", clients, mbps[0], mbps[1], mbps[1] / mbps[0], mbps[2],
          mbps[2] / mbps[0], mbps[3], mbps[3] / mbps[0]);
    }
  }
}

// Node-to-node mutual TLS: two 3-node clusters side by side, one with plaintext gRPC
// (insecure_grpc) and one with mTLS (the default); the same sizes of files uploaded through node 1
// with R = 3, so every byte also travels to two replicas over gRPC. Three rounds, alternating the
// sides so that a drift of the machine's load hits both alike; MB/s of each side and the ratio.
// (Streams need no gRPC here: with R = 3 on 3 nodes every node holds a copy.)
void MtlsFigure(const Options& o) {
  struct Side {
    const char* name;
    bool tls;
    std::unique_ptr<Cluster> cluster;
    int port = 0;
    double mbps_sum = 0;
  };
  Side sides[2] = {{"plaintext", false, nullptr}, {"mtls", true, nullptr}};
  for (Side& side : sides) {
    side.cluster = std::make_unique<Cluster>(3, std::string("bench-grpc-") + side.name);
    if (!side.tls) side.cluster->UseInsecureGrpc();
    side.cluster->SetCommonFlags({"--replication-factor", "3", "--scrub-interval-s", "0", "--log-level",
                                  "warning", "--auth", "false"});
    side.cluster->StartAll();
    if (side.cluster->WaitLeader() == 0) Die("no leader");
    side.port = side.cluster->spec(1).http_port;
    UploadMBps(side.port, nullptr, {"warm-up.mp3"}, {NoisyMp3(1 << 20, 99)},
               std::string("mtls-") + side.name);
  }
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::string> ids;
    std::vector<std::string> contents;
    for (int f = 0; f < o.enc_files; ++f) {
      ids.push_back("mtls-" + std::to_string(round) + "-" + std::to_string(f) + ".mp3");
      contents.push_back(NoisyMp3(o.enc_file_mib << 20, static_cast<uint64_t>(round * 100 + f + 1)));
    }
    for (int i = 0; i < 2; ++i) {
      Side& side = sides[(round + i) % 2];
      side.mbps_sum += UploadMBps(side.port, nullptr, ids, contents, std::string("mtls-") + side.name);
    }
  }
  const double plain = sides[0].mbps_sum / kRounds;
  const double mtls = sides[1].mbps_sum / kRounds;
  std::printf(
      "mtls upload: files=%d x %d rounds file_mib=%lu R=3 plaintext_MBps=%.1f mtls_MBps=%.1f ratio=%.3f\n",
      o.enc_files, kRounds, static_cast<unsigned long>(o.enc_file_mib), plain, mtls, mtls / plain);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--total-mib") {
      o.total_mib = std::stoull(value);
    } else if (flag == "--file-mib") {
      o.file_mib = std::stoull(value);
    } else if (flag == "--rebalance-files") {
      o.rebalance_files = std::stoi(value);
    } else if (flag == "--repair-bytes-per-s") {
      o.repair_bytes_per_s = value;
    } else if (flag == "--only") {
      o.only = value;
    } else if (flag == "--enc-file-mib") {
      o.enc_file_mib = std::stoull(value);
    } else if (flag == "--enc-files") {
      o.enc_files = std::stoi(value);
    } else if (flag == "--enc-seconds") {
      o.enc_seconds = std::stod(value);
    } else {
      Die("unknown flag " + flag);
    }
  }
  auto wanted = [&](const std::string& part) {
    return ("," + o.only + ",").find("," + part + ",") != std::string::npos;
  };
  if (wanted("rebalance")) RebalanceFigure(o);
  if (wanted("repair")) RepairFigure(o);
  if (wanted("encryption")) EncryptionFigure(o);
  if (wanted("https")) HttpsFigure(o);
  if (wanted("mtls")) MtlsFigure(o);
  return 0;
}
