// The REST API of real dispotify-node processes on loopback, spoken to over raw sockets: upload
// (multipart and raw), stream (local sendfile and proxied, ranges, ETag, HEAD), search, songs,
// admin, and bad input that must get a clear error and leave nothing behind.

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "common/repr_digest.h"
#include "common/sha256.h"
#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "node/replication/placement.h"
#include "tests/node/api/http/test_client.h"
#include "tests/support/audio_files.h"

namespace dispotify::e2e {
namespace {

using api::http::testing::ClientResponse;
using api::http::testing::TestClient;
using namespace std::chrono_literals;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

class RestE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  Cluster& MakeCluster(int n, std::vector<std::string> flags = {}) {
    cluster_ = std::make_unique<Cluster>(n, "rest");
    std::vector<std::string> common = {"--repair-interval-ms", "200", "--scrub-interval-s", "0"};
    common.insert(common.end(), flags.begin(), flags.end());
    cluster_->SetCommonFlags(common);
    return *cluster_;
  }

  uint16_t Port(uint64_t node) { return static_cast<uint16_t>(cluster_->spec(node).http_port); }

  std::optional<ClientResponse> Call(uint64_t node, const std::string& method, const std::string& target,
                                     const std::string& body = "", const std::string& extra_headers = "") {
    return HttpCall(Port(node), method, target, body, extra_headers);
  }

  std::optional<ClientResponse> UploadMultipart(uint64_t node, const std::string& file_name,
                                                const std::string& data, const std::string& title) {
    return HttpUploadMultipart(Port(node), file_name, data, title);
  }

  bool WaitReady(uint64_t node) {
    return Eventually(
        [&] {
          auto r = Call(node, "GET", "/readyz");
          return r && r->status == 200;
        },
        20s);
  }

  std::unique_ptr<Cluster> cluster_;
};

// The string value of `"key":"..."` in a flat JSON text (the first occurrence), or "".
std::string JsonString(const std::string& body, const std::string& key, size_t from = 0) {
  const std::string needle = "\"" + key + "\":\"";
  auto pos = body.find(needle, from);
  if (pos == std::string::npos) return "";
  pos += needle.size();
  auto end = body.find('"', pos);
  return end == std::string::npos ? "" : body.substr(pos, end - pos);
}

std::string ReadIdentityUuid(const std::string& data_dir) {
  std::ifstream in(data_dir + "/IDENTITY");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("node_uuid=", 0) == 0) return line.substr(10);
  }
  return "";
}

// What an operator reads to tell members apart during a rolling upgrade or an empty-disk return:
// the software's version, the cluster's id and each node's incarnation.
TEST_F(RestE2eTest, ClusterStatusShowsVersionClusterAndIncarnation) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  std::set<std::string> uuids;
  for (uint64_t n = 1; n <= 3; ++n) {
    auto st = Call(n, "GET", "/cluster/status");
    ASSERT_TRUE(st);
    ASSERT_EQ(st->status, 200) << st->body;
    EXPECT_EQ(JsonString(st->body, "version"), DISPOTIFY_VERSION) << st->body;
    EXPECT_EQ(JsonString(st->body, "cluster_id"), "rest") << st->body;
    const std::string uuid = JsonString(st->body, "node_uuid");
    EXPECT_EQ(uuid.size(), 32u) << st->body;
    EXPECT_EQ(uuid, ReadIdentityUuid(c.spec(n).data_dir)) << "node " << n;
    uuids.insert(uuid);
  }
  EXPECT_EQ(uuids.size(), 3u) << "every node has its own incarnation";
}

// The JSON object of member `id` in a /cluster/status body ("" when not listed).
std::string MemberJson(const std::string& status, uint64_t id) {
  const auto pos = status.find("{\"node_id\":" + std::to_string(id) + ",\"address\"");
  if (pos == std::string::npos) return "";
  return status.substr(pos, status.find('}', pos) - pos + 1);
}

// Issue 10, incarnations: a node that comes back with an empty data directory under its old id
// is not the voter it replaces. The cluster is brought up as the operator does (bootstrap_node_id:
// node 1 alone, the others join as learners with their node_uuid and are promoted). Then node
// V's disk is wiped: it returns with a new node_uuid, the others refuse its Raft messages (the
// membership still shows the old uuid) and keep working as two; once the old member is removed
// and V added back as a learner with its new uuid through the admin API, it catches up and is
// promoted: three healthy voters again.
TEST_F(RestE2eTest, AWipedNodeIsRefusedUntilReAddedAsItsNewIncarnation) {
  Cluster& c = MakeCluster(3, {"--bootstrap-node-id", "1"});
  c.StartAll();
  ASSERT_EQ(c.WaitLeader(), 1u);
  auto status_of = [&](uint64_t n) -> std::string {
    auto st = Call(n, "GET", "/cluster/status");
    return st && st->status == 200 ? st->body : "";
  };
  auto own_uuid = [&](uint64_t n) { return JsonString(status_of(n), "node_uuid"); };
  // Nodes 2 and 3 registered themselves (with their incarnation) through their seeds.
  for (uint64_t n : {2u, 3u}) {
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = Call(1, "POST", "/admin/members/" + std::to_string(n) + "/promote");
          return r && r->status == 200;
        },
        30s))
        << "node " << n << " was not added and promoted";
  }
  std::string status;
  ASSERT_TRUE(Eventually(
      [&] {
        status = status_of(1);
        for (uint64_t n = 1; n <= 3; ++n) {
          const std::string m = MemberJson(status, n);
          if (m.find("\"role\":\"learner\"") != std::string::npos ||
              JsonString(m, "node_uuid") != own_uuid(n))
            return false;
        }
        return true;
      },
      20s))
      << status;
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  const std::string song = testing_audio::MakeMp3("Before the wipe", 20);
  auto up = Call(1, "POST", "/music/upload?filename=before-wipe.mp3", song);
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;

  const uint64_t leader = c.WaitLeader();
  const uint64_t victim = leader == 3 ? 2 : 3;
  const std::string old_uuid = own_uuid(victim);
  ASSERT_EQ(old_uuid.size(), 32u);
  ASSERT_EQ(c.Stop(victim).value_or(-1), 0);
  std::filesystem::remove_all(c.spec(victim).data_dir);
  c.Start(victim);  // the same flags: bootstrap_node_id 1 makes it join
  std::string new_uuid;
  ASSERT_TRUE(Eventually(
      [&] {
        new_uuid = own_uuid(victim);
        return !new_uuid.empty();
      },
      20s));
  EXPECT_NE(new_uuid, old_uuid) << "an empty data directory is a new incarnation";

  // Refused: the leader still lists the old incarnation and says it refuses this one.
  ASSERT_TRUE(Eventually(
      [&] {
        status = status_of(leader);
        const std::string m = MemberJson(status, victim);
        return JsonString(m, "node_uuid") == old_uuid &&
               m.find("\"incarnation_refused\":true") != std::string::npos;
      },
      20s))
      << status;
  auto metrics = HttpCall(c.spec(leader).metrics_port, "GET", "/metrics");
  ASSERT_TRUE(metrics);
  const std::string series = "\ndispotify_raft_incarnation_refusals_total ";
  const auto counter = metrics->body.find(series);
  ASSERT_NE(counter, std::string::npos);
  EXPECT_GT(std::atof(metrics->body.c_str() + counter + series.size()), 0.0)
      << metrics->body.substr(counter, series.size() + 20);
  {
    std::ifstream log(c.LogPath(leader));
    std::stringstream text;
    text << log.rdbuf();
    EXPECT_NE(text.str().find("refusing the messages of node " + std::to_string(victim)), std::string::npos);
  }
  // Adding the new incarnation while the old one is a member is refused with a clear error.
  const std::string add_body = "{\"node_id\":" + std::to_string(victim) + ",\"address\":\"" +
                               c.spec(victim).address() + "\",\"node_uuid\":\"" + new_uuid + "\"}";
  auto early = Call(leader, "POST", "/admin/members", add_body, "Content-Type: application/json\r\n");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 409) << early->body;
  EXPECT_NE(early->body.find("remove it first"), std::string::npos) << early->body;
  auto bad = Call(leader, "POST", "/admin/members",
                  "{\"node_id\":9,\"address\":\"127.0.0.1:1\",\"node_uuid\":\"NOT-HEX\"}",
                  "Content-Type: application/json\r\n");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  // The other two keep the cluster writable.
  for (const char* factor : {"2", "3"}) {
    auto rf = Call(leader, "PUT", "/admin/replication", std::string("{\"factor\": ") + factor + "}",
                   "Content-Type: application/json\r\n");
    ASSERT_TRUE(rf);
    EXPECT_EQ(rf->status, 200) << rf->body;
  }

  // Remove the old incarnation, add the new one as a learner, promote it once caught up.
  auto removed = Call(leader, "DELETE", "/admin/members/" + std::to_string(victim));
  ASSERT_TRUE(removed);
  ASSERT_EQ(removed->status, 204) << removed->body;
  std::optional<ClientResponse> added;
  ASSERT_TRUE(Eventually(
      [&] {
        added = Call(leader, "POST", "/admin/members", add_body, "Content-Type: application/json\r\n");
        return added && added->status == 200;
      },
      20s))
      << (added ? added->body : "no answer");
  EXPECT_NE(added->body.find(new_uuid), std::string::npos) << added->body;
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = Call(leader, "POST", "/admin/members/" + std::to_string(victim) + "/promote");
        return r && r->status == 200;
      },
      30s))
      << "the new incarnation did not catch up";
  ASSERT_TRUE(Eventually(
      [&] {
        status = status_of(c.WaitLeader());
        int voters = 0;
        for (uint64_t n = 1; n <= 3; ++n) {
          const std::string m = MemberJson(status, n);
          if (m.find("\"role\":\"learner\"") == std::string::npos &&
              m.find("\"healthy\":true") != std::string::npos &&
              m.find("\"incarnation_refused\":false") != std::string::npos)
            ++voters;
        }
        return voters == 3 && JsonString(MemberJson(status, victim), "node_uuid") == new_uuid;
      },
      30s))
      << status;
  ASSERT_TRUE(WaitReady(victim));
  auto found = Call(victim, "GET", "/music/songs/before-wipe.mp3");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->status, 200) << found->body;
}

TEST_F(RestE2eTest, UploadStreamSearchAndDelete) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  // One copy only, so that two of the three nodes must proxy the stream from the third.
  auto rf = Call(1, "PUT", "/admin/replication", "{\"factor\": 1}", "Content-Type: application/json\r\n");
  ASSERT_TRUE(rf);
  ASSERT_EQ(rf->status, 200) << rf->body;

  // A real (silent) MP3 of ~700 KiB with ID3v2 tags; the form's title overrides the tag's.
  const std::string data = testing_audio::MakeMp3("Tagged Title", 1700);
  std::optional<ClientResponse> up;
  ASSERT_TRUE(Eventually(
      [&] {
        up = UploadMultipart(2, "Hey Jude.mp3", data, "Hey Jude");
        return up && up->status != 503;
      },
      20s));
  ASSERT_EQ(up->status, 201) << up->body;
  EXPECT_NE(up->body.find("\"file_id\":\"Hey-Jude.mp3\""), std::string::npos) << up->body;
  EXPECT_NE(up->body.find("\"title\":\"Hey Jude\""), std::string::npos) << up->body;
  EXPECT_NE(up->body.find("\"size_bytes\":" + std::to_string(data.size())), std::string::npos) << up->body;
  // The rest comes from the file's tags, read by the isolated tagger.
  EXPECT_NE(up->body.find("\"artist\":\"MP3 Artist\""), std::string::npos) << up->body;
  EXPECT_NE(up->body.find("\"album\":\"MP3 Album\""), std::string::npos) << up->body;
  EXPECT_NE(up->body.find("\"year\":2019"), std::string::npos) << up->body;
  EXPECT_NE(up->body.find("\"duration_ms\":44"), std::string::npos) << up->body;  // 1700 x 26.12 ms

  // Same content again: 200, not a second song.
  auto again = UploadMultipart(2, "Hey Jude.mp3", data, "Hey Jude");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  // Other content under the same name: 409.
  auto clash = UploadMultipart(2, "Hey Jude.mp3", testing_audio::MakeMp3("Other", 3), "Other");
  ASSERT_TRUE(clash);
  EXPECT_EQ(clash->status, 409) << clash->body;

  std::string etag;
  for (uint64_t n = 1; n <= 3; ++n) {
    std::optional<ClientResponse> full;
    ASSERT_TRUE(Eventually(
        [&] {
          full = Call(n, "GET", "/music/stream/Hey-Jude.mp3");
          return full && full->status == 200;
        },
        10s))
        << "node " << n;
    EXPECT_EQ(full->body, data) << "node " << n;
    EXPECT_EQ(full->Header("content-type"), "audio/mpeg");
    EXPECT_EQ(full->Header("accept-ranges"), "bytes");
    EXPECT_EQ(full->Header("dispotify-node"), std::to_string(n));  // which node answered
    etag = full->Header("etag");
    EXPECT_EQ(etag.size(), 66u);

    auto part = Call(n, "GET", "/music/stream/Hey-Jude.mp3", "", "Range: bytes=1000-1999\r\n");
    ASSERT_TRUE(part);
    EXPECT_EQ(part->status, 206) << "node " << n;
    EXPECT_EQ(part->Header("content-range"), "bytes 1000-1999/" + std::to_string(data.size()));
    EXPECT_EQ(part->body, data.substr(1000, 1000)) << "node " << n;

    auto tail = Call(n, "GET", "/music/stream/Hey-Jude.mp3", "", "Range: bytes=-10\r\n");
    ASSERT_TRUE(tail);
    EXPECT_EQ(tail->status, 206);
    EXPECT_EQ(tail->body, data.substr(data.size() - 10));

    // If-Range: the range while the tag is this content's (a browser cache fetching the rest of a
    // partly cached stream), the whole file otherwise.
    auto same = Call(n, "GET", "/music/stream/Hey-Jude.mp3", "",
                     "Range: bytes=1000-1999\r\nIf-Range: " + etag + "\r\n");
    ASSERT_TRUE(same);
    EXPECT_EQ(same->status, 206) << "node " << n;
    EXPECT_EQ(same->body, data.substr(1000, 1000)) << "node " << n;
    auto other =
        Call(n, "GET", "/music/stream/Hey-Jude.mp3", "", "Range: bytes=1000-1999\r\nIf-Range: \"x\"\r\n");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 200) << "node " << n;
    EXPECT_EQ(other->body, data) << "node " << n;

    auto beyond = Call(n, "GET", "/music/stream/Hey-Jude.mp3", "", "Range: bytes=99999999-\r\n");
    ASSERT_TRUE(beyond);
    EXPECT_EQ(beyond->status, 416);
    EXPECT_EQ(beyond->Header("content-range"), "bytes */" + std::to_string(data.size()));

    auto cached = Call(n, "GET", "/music/stream/Hey-Jude.mp3", "", "If-None-Match: " + etag + "\r\n");
    ASSERT_TRUE(cached);
    EXPECT_EQ(cached->status, 304);
    EXPECT_TRUE(cached->body.empty());

    auto head = Call(n, "HEAD", "/music/stream/Hey-Jude.mp3");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->Header("content-length"), std::to_string(data.size()));
  }

  std::optional<ClientResponse> found;
  ASSERT_TRUE(Eventually(
      [&] {
        found = Call(3, "GET", "/music/search?q=jude");
        return found && found->status == 200 && found->body.find("Hey-Jude.mp3") != std::string::npos;
      },
      10s))
      << (found ? found->body : "no answer");
  EXPECT_NE(found->body.find("\"total\":1"), std::string::npos) << found->body;
  auto typo = Call(3, "GET", "/music/search?q=hye%20jdue");
  ASSERT_TRUE(typo);
  EXPECT_EQ(typo->status, 200);

  auto song = Call(1, "GET", "/music/songs/Hey-Jude.mp3");
  ASSERT_TRUE(song);
  EXPECT_EQ(song->status, 200);
  EXPECT_NE(song->body.find("\"replicas\":[{\"node_id\""), std::string::npos) << song->body;
  auto list = Call(1, "GET", "/music/songs?limit=10");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_NE(list->body.find("Hey-Jude.mp3"), std::string::npos);

  auto del = Call(3, "DELETE", "/music/songs/Hey-Jude.mp3");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 204) << del->body;
  auto gone = Call(3, "GET", "/music/stream/Hey-Jude.mp3");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  EXPECT_NE(gone->body.find("\"error\""), std::string::npos);
}

// A client that uploads through one node and reads through another (a load balancer in front of
// the cluster) finds the song at once: a node that has not applied it yet catches up with the
// leader before it answers 404.
TEST_F(RestE2eTest, ASongAcknowledgedByOneNodeIsFoundAtOnceThroughEveryOther) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  for (int i = 0; i < 60; ++i) {
    const uint64_t via = 1 + static_cast<uint64_t>(i % 3);
    const std::string id = "song-" + std::to_string(i) + ".mp3";
    std::optional<ClientResponse> up;
    ASSERT_TRUE(Eventually(
        [&] {
          up = Call(via, "POST", "/music/upload?filename=" + id,
                    testing_audio::MakeMp3("Song " + std::to_string(i), 3),
                    "Content-Type: application/octet-stream\r\n");
          return up && up->status != 503;
        },
        20s));
    ASSERT_EQ(up->status, 201) << up->body;
    for (uint64_t other = 1; other <= 3; ++other) {
      if (other == via) continue;
      auto song = Call(other, "GET", "/music/songs/" + id);
      ASSERT_TRUE(song);
      EXPECT_EQ(song->status, 200) << "uploaded via node " << via << ", read via node " << other << ": "
                                   << song->body;
    }
  }

  // A node that was paused while the cluster took a song has not applied it when it resumes; its
  // answer must still be the song, not a 404. One copy per song, placed away from the paused node
  // (an upload waits for every copy it placed), uploaded through the leader.
  auto rf = Call(1, "PUT", "/admin/replication", "{\"factor\": 1}", "Content-Type: application/json\r\n");
  ASSERT_TRUE(rf);
  ASSERT_EQ(rf->status, 200) << rf->body;
  const uint64_t leader = c.WaitLeader();
  const uint64_t paused = leader == 3 ? 2 : 3;
  const replication::PlacementRing ring({NodeId(1), NodeId(2), NodeId(3)});
  int checked = 0;
  for (int i = 0; checked < 5; ++i) {
    const std::string id = "paused-" + std::to_string(i) + ".mp3";
    if (ring.Primary(id) == NodeId(paused)) continue;
    ++checked;
    c.process(paused)->Signal(SIGSTOP);
    auto up = Call(leader, "POST", "/music/upload?filename=" + id,
                   testing_audio::MakeMp3("Paused " + std::to_string(i), 3),
                   "Content-Type: application/octet-stream\r\n");
    c.process(paused)->Signal(SIGCONT);
    ASSERT_TRUE(up);
    ASSERT_EQ(up->status, 201) << up->body;
    auto song = Call(paused, "GET", "/music/songs/" + id);
    ASSERT_TRUE(song);
    EXPECT_EQ(song->status, 200) << "read via the resumed node " << paused << ": " << song->body;
  }

  auto missing = Call(2, "GET", "/music/songs/never-uploaded.mp3");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(RestE2eTest, BadInputGetsAClearErrorAndLeavesNothing) {
  Cluster& c = MakeCluster(1, {"--max-upload-mib", "1"});
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_TRUE(WaitReady(1));
  struct Case {
    std::string method, target, body, headers;
    int status;
  };
  const std::string json = "Content-Type: application/json\r\n";
  const std::vector<Case> cases = {
      {"GET", "/music/stream/..%2F..%2Fetc%2Fpasswd", "", "", 400},
      {"GET", "/music/stream/a%00b", "", "", 400},
      {"GET", "/music/stream/" + std::string(200, 'x'), "", "", 400},
      {"GET", "/music/stream/no-such-song", "", "", 404},
      {"GET", "/music/songs/%2e%2e", "", "", 400},
      {"GET", "/music/nothing-here", "", "", 404},
      {"PATCH", "/music/search", "", "", 405},
      {"GET", "/music/search", "", "", 400},
      {"GET", "/music/search?q=x&limit=abc", "", "", 400},
      {"GET", "/music/search?q=x&limit=100000", "", "", 400},
      {"GET", "/music/songs?limit=-1", "", "", 400},
      {"POST", "/music/upload", "abc", "", 400},                     // no name
      {"POST", "/music/upload?filename=notes.txt", "abc", "", 415},  // not audio
      {"POST", "/music/upload?filename=a.mp3&track=x", "abc", "", 400},
      {"POST", "/music/upload?filename=a.mp3", "--x\r\n", "Content-Type: multipart/form-data; boundary=x\r\n",
       400},
      {"POST", "/music/upload?filename=a.mp3", "", "Content-Type: multipart/form-data\r\n", 400},
      {"PUT", "/admin/replication", "{\"factor\": 2, \"extra\": 1}", json, 400},
      {"PUT", "/admin/replication", "{\"factor\": \"two\"}", json, 400},
      {"PUT", "/admin/replication", "{\"factor\": 0}", json, 400},
      {"PUT", "/admin/replication", "{\"factor\": 17}", json, 400},
      {"PUT", "/admin/replication", "{factor: 2", json, 400},
      {"PUT", "/admin/replication", "[1,2]", json, 400},
      {"POST", "/admin/members", "{\"node_id\": 5}", json, 400},
      {"POST", "/admin/members/abc/promote", "", "", 400},
      {"DELETE", "/admin/members/99", "", "", 404},
  };
  for (const auto& k : cases) {
    auto r = Call(1, k.method, k.target, k.body, k.headers);
    ASSERT_TRUE(r) << k.method << " " << k.target << ": no answer";
    EXPECT_EQ(r->status, k.status) << k.method << " " << k.target << ": " << r->body;
    if (r->status >= 400 && k.method != "HEAD") {
      EXPECT_NE(r->body.find("\"error\""), std::string::npos) << k.target << ": " << r->body;
    }
  }
  // An audio name on bytes that are not audio: 415, and nothing stays.
  auto junk = Call(1, "POST", "/music/upload?filename=junk.mp3", RandomBytes(20000, 11));
  ASSERT_TRUE(junk);
  EXPECT_EQ(junk->status, 415) << junk->body;
  // A good one goes through, with its tags.
  auto good = Call(1, "POST", "/music/upload?filename=good.mp3", testing_audio::MakeMp3("Good Song", 40));
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 201) << good->body;
  EXPECT_NE(good->body.find("\"title\":\"Good Song\""), std::string::npos) << good->body;
  auto deleted = Call(1, "DELETE", "/music/songs/good.mp3");
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 204);

  // Over the configured limit: refused from the Content-Length, before the body is read.
  const std::string big(1536 * 1024, 'x');
  auto over = Call(1, "POST", "/music/upload?filename=big.mp3", big);
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 413) << over->body;
  // A truncated upload (the client promises more than it sends, then goes away).
  {
    TestClient client(Port(1));
    ASSERT_TRUE(client.Send(
        "POST /music/upload?filename=cut.mp3 HTTP/1.1\r\nHost: t\r\nContent-Length: 500000\r\n\r\n" +
        std::string(1000, 'y')));
    client.ShutdownWrite();
    (void)client.ReadResponse();
  }
  // Headers far over the limit: 431, and the node goes on.
  auto huge = Call(1, "GET", "/music/songs", "", "X-Filler: " + std::string(64 * 1024, 'h') + "\r\n");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 431);
  // Invalid UTF-8 in text: refused, never stored or echoed as broken JSON.
  for (const char* target : {"/music/search?q=%FF%FE", "/music/upload?filename=ok.mp3&title=%C3%28"}) {
    auto bad = Call(1, std::string(target).rfind("/music/upload", 0) == 0 ? "POST" : "GET", target,
                    std::string(target).rfind("/music/upload", 0) == 0 ? testing_audio::MakeMp3("U", 5) : "");
    ASSERT_TRUE(bad) << target;
    EXPECT_EQ(bad->status, 400) << target << ": " << bad->body;
  }
  // A Content-Length that lies (shorter than what follows): the rest is read as another request,
  // which is malformed: 400 for it, the first one answered normally.
  {
    TestClient client(Port(1));
    ASSERT_TRUE(
        client.Send("GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nabGARBAGE\r\n\r\n"));
    auto first = client.ReadResponse();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200);
    auto second = client.ReadResponse();
    if (second) {
      EXPECT_EQ(second->status, 400);
    }
  }
  auto healthy = Call(1, "GET", "/healthz");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->status, 200);
  auto songs = Call(1, "GET", "/music/songs");
  ASSERT_TRUE(songs);
  EXPECT_EQ(songs->body, "{\"items\":[],\"next_after\":\"\"}") << "a failed upload became visible";
  EXPECT_TRUE(Eventually(
      [&] {
        std::error_code ec;
        return std::filesystem::is_empty(c.spec(1).data_dir + "/spool", ec) && !ec;
      },
      5s))
      << "spool files left behind";
}

TEST_F(RestE2eTest, UploadIdsComeFromThePathAndDigestsAreChecked) {
  Cluster& c = MakeCluster(1);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_TRUE(WaitReady(1));
  const std::string a = testing_audio::MakeMp3("Intro A", 20);
  const std::string b = testing_audio::MakeMp3("Intro B", 30);
  const std::string path_a = "/music/upload?path=" + std::string("Music%2FAlbum%20A%2F01%20-%20Intro.mp3");
  const std::string path_b = "/music/upload?path=" + std::string("Music%5CAlbum%20B%5C01%20-%20Intro.mp3");

  // A wrong digest, a malformed one, a wrong ?sha256=: 400, nothing stored.
  const std::string wrong = "Repr-Digest: sha-256=:" + std::string(43, 'A') + "=:\r\n";
  for (const auto& [target, headers] :
       std::vector<std::pair<std::string, std::string>>{{path_a, wrong},
                                                        {path_a, "Repr-Digest: sha-256=not-base64\r\n"},
                                                        {path_a + "&sha256=" + std::string(64, '0'), ""},
                                                        {path_a + "&sha256=xyz", ""},
                                                        {path_a + "&replace=maybe", ""}}) {
    auto r = Call(1, "POST", target, a, headers);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << target << " " << headers << ": " << r->body;
  }
  auto none = Call(1, "GET", "/music/songs");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->body, "{\"items\":[],\"next_after\":\"\"}");

  // The right digest (among another algorithm's) and the same name in two albums: two songs.
  const std::string digest_a = "Repr-Digest: sha-512=:AAAA:, " + FormatReprDigest(Sha256Digest(a)) + "\r\n";
  auto up_a = Call(1, "POST", path_a, a, digest_a);
  ASSERT_TRUE(up_a);
  ASSERT_EQ(up_a->status, 201) << up_a->body;
  EXPECT_NE(up_a->body.find("\"file_id\":\"Music_Album-A_01-Intro.mp3\""), std::string::npos) << up_a->body;
  EXPECT_NE(up_a->body.find("\"file_name\":\"01 - Intro.mp3\""), std::string::npos) << up_a->body;
  auto up_b = Call(1, "POST", path_b + "&sha256=" + Sha256Hex(b), b);
  ASSERT_TRUE(up_b);
  ASSERT_EQ(up_b->status, 201) << up_b->body;
  EXPECT_NE(up_b->body.find("\"file_id\":\"Music_Album-B_01-Intro.mp3\""), std::string::npos) << up_b->body;

  // The same bytes again: 200. Other bytes under the id: 409 already_exists.
  auto again = Call(1, "POST", path_a, a, digest_a);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  auto clash = Call(1, "POST", path_a, b);
  ASSERT_TRUE(clash);
  EXPECT_EQ(clash->status, 409) << clash->body;
  EXPECT_NE(clash->body.find("already_exists"), std::string::npos) << clash->body;

  // file_id wins over path, path over filename.
  auto explicit_id = Call(1, "POST", path_a + "&file_id=mine.mp3&filename=other.mp3", b);
  ASSERT_TRUE(explicit_id);
  EXPECT_EQ(explicit_id->status, 201) << explicit_id->body;
  EXPECT_NE(explicit_id->body.find("\"file_id\":\"mine.mp3\""), std::string::npos) << explicit_id->body;
  EXPECT_NE(explicit_id->body.find("\"file_name\":\"other.mp3\""), std::string::npos) << explicit_id->body;
  auto nothing = Call(1, "POST", "/music/upload?path=%E6%97%A5%E6%9C%AC%2F..%2F.", a);
  ASSERT_TRUE(nothing);
  EXPECT_EQ(nothing->status, 400) << nothing->body;
}

TEST_F(RestE2eTest, DrainMovesEveryCopyOffANode) {
  Cluster& c = MakeCluster(4);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 4; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  auto rf = Call(1, "PUT", "/admin/replication", "{\"factor\": 2}", "Content-Type: application/json\r\n");
  ASSERT_TRUE(rf && rf->status == 200);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    const std::string name = "drain-" + std::to_string(i) + ".mp3";
    auto up = Call(1 + static_cast<uint64_t>(i % 4), "POST", "/music/upload?filename=" + name,
                   testing_audio::MakeMp3("Drain " + std::to_string(i), 20 + i));
    ASSERT_TRUE(up);
    ASSERT_EQ(up->status, 201) << up->body;
    ids.push_back(name);
  }
  auto local_files = [&](uint64_t node) -> int {
    auto st = Call(node, "GET", "/cluster/status");
    if (!st || st->status != 200) return -1;
    auto pos = st->body.find("\"local\":{\"files\":");
    if (pos == std::string::npos) return -1;
    return std::atoi(st->body.c_str() + pos + 17);
  };
  ASSERT_TRUE(Eventually([&] { return local_files(4) > 0; }, 20s)) << "node 4 should hold some copies first";

  auto drain = Call(2, "POST", "/admin/members/4/drain");
  ASSERT_TRUE(drain);
  ASSERT_EQ(drain->status, 202) << drain->body;
  ASSERT_TRUE(Eventually([&] { return local_files(4) == 0; }, 60s)) << "node 4 still holds copies";
  for (const auto& id : ids) {
    auto song = Call(1, "GET", "/music/songs/" + id);
    ASSERT_TRUE(song && song->status == 200);
    EXPECT_EQ(song->body.find("\"node_id\":4"), std::string::npos) << id << ": " << song->body;
    size_t healthy = 0;
    for (size_t p = song->body.find("healthy"); p != std::string::npos; p = song->body.find("healthy", p + 1))
      ++healthy;
    EXPECT_EQ(healthy, 2u) << id << " must keep R copies: " << song->body;
  }
  // New uploads avoid a draining node.
  auto late = Call(4, "POST", "/music/upload?filename=after-drain.mp3", testing_audio::MakeMp3("After", 10));
  ASSERT_TRUE(late);
  ASSERT_EQ(late->status, 201) << late->body;
  EXPECT_EQ(late->body.find("\"node_id\":4"), std::string::npos) << late->body;
  auto status = Call(1, "GET", "/cluster/status");
  ASSERT_TRUE(status);
  EXPECT_NE(status->body.find("\"node_id\":4,\"address\""), std::string::npos);
  EXPECT_NE(status->body.find("\"draining\":true"), std::string::npos) << status->body;
  auto undrain = Call(1, "DELETE", "/admin/members/4/drain");
  ASSERT_TRUE(undrain);
  EXPECT_EQ(undrain->status, 200) << undrain->body;
  auto unknown = Call(1, "POST", "/admin/members/42/drain");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(RestE2eTest, WithoutQuorumUploadsAnswer503WithRetryAfter) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_TRUE(WaitReady(1));
  c.Kill9(2);
  c.Kill9(3);
  std::this_thread::sleep_for(3s);
  auto r = Call(1, "POST", "/music/upload?filename=late.mp3", testing_audio::MakeMp3("Late", 10));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_FALSE(r->Header("retry-after").empty());
  auto ready = Call(1, "GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << "a node without a leader is not ready";
  auto alive = Call(1, "GET", "/healthz");
  ASSERT_TRUE(alive);
  EXPECT_EQ(alive->status, 200) << "but it is alive";
}

// The library routes over real uploads: tags (album artist, disc, genre, compilation) read by the
// tagger make albums and artists; listings page by keyset; reads are linearizable through any
// node, stale on request, and 503 without a quorum.
TEST_F(RestE2eTest, ArtistsAlbumsAndAnAlbumsSongs) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  struct Upload {
    std::string name;
    std::string query;  // form fields override the file's tags
    std::vector<std::pair<std::string, std::string>> frames;
  };
  const std::vector<Upload> uploads = {
      {"ar-1.mp3", "&artist=The%20Beatles&album=Abbey%20Road&track=1", {}},
      {"ar-2.mp3", "&artist=the%20beatles&album=ABBEY%20ROAD&track=2", {{"TPOS", "1/1"}, {"TCON", "Rock"}}},
      {"now-1.mp3", "&artist=Madonna&album=Now%201", {{"TCMP", "1"}}},
      {"now-2.mp3", "&artist=Prince&album=Now%201", {{"TCMP", "1"}, {"TCON", "Funk"}}},
      {"dbl-2.mp3", "&album=Double&track=1", {{"TPE2", "Band"}, {"TPOS", "2/2"}}},
      {"dbl-1.mp3", "&album=Double&track=9", {{"TPE2", "Band"}, {"TPOS", "1/2"}}},
  };
  for (size_t i = 0; i < uploads.size(); ++i) {
    const auto& u = uploads[i];
    const std::string data = testing_audio::WithId3Frames(testing_audio::MakeMp3(u.name, 20), u.frames);
    std::optional<ClientResponse> up;
    ASSERT_TRUE(Eventually(
        [&] {
          up = Call(1 + i % 3, "POST", "/music/upload?filename=" + u.name + u.query, data);
          return up && up->status != 503;
        },
        20s));
    ASSERT_EQ(up->status, 201) << up->body;
    EXPECT_NE(up->body.find("\"album_id\":\""), std::string::npos) << up->body;
  }
  const std::string abbey = "8c0f512e5bf1fbf3";  // library.h: SHA-256("the beatles\x1f" "abbey road")

  // Through every node at once (linearizable): the albums, by name.
  for (uint64_t n = 1; n <= 3; ++n) {
    auto albums = Call(n, "GET", "/music/albums");
    ASSERT_TRUE(albums);
    ASSERT_EQ(albums->status, 200) << albums->body;
    EXPECT_EQ(albums->Header("dispotify-consistency"), "linearizable");
    const size_t a = albums->body.find("\"title\":\"ABBEY ROAD\"");
    const size_t d = albums->body.find("\"title\":\"Double\"");
    const size_t w = albums->body.find("\"title\":\"Now 1\"");
    ASSERT_NE(a, std::string::npos) << albums->body;
    ASSERT_NE(d, std::string::npos) << albums->body;
    ASSERT_NE(w, std::string::npos) << albums->body;
    EXPECT_LT(a, d);
    EXPECT_LT(d, w);
    EXPECT_NE(albums->body.find("\"album_id\":\"" + abbey + "\""), std::string::npos) << albums->body;
    EXPECT_NE(albums->body.find("\"album_artist\":\"Various Artists\""), std::string::npos) << albums->body;
    EXPECT_NE(albums->body.find("\"next_after\":\"\""), std::string::npos) << albums->body;
  }
  // Paged one at a time, the cursor walks the same three albums.
  std::vector<std::string> titles;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto r = Call(2, "GET", "/music/albums?limit=1&sort=name" + (after.empty() ? "" : "&after=" + after));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    titles.push_back(JsonString(r->body, "title"));
    after = JsonString(r->body, "next_after");
    if (after.empty()) break;
  }
  EXPECT_EQ(titles, (std::vector<std::string>{"ABBEY ROAD", "Double", "Now 1"}));
  auto wrong_sort = Call(2, "GET",
                         "/music/albums?limit=1&sort=year&after=" +
                             JsonString(Call(2, "GET", "/music/albums?limit=1")->body, "next_after"));
  ASSERT_TRUE(wrong_sort);
  EXPECT_EQ(wrong_sort->status, 400) << wrong_sort->body;
  EXPECT_NE(wrong_sort->body.find("\"code\": \"invalid_argument\""), std::string::npos) << wrong_sort->body;

  auto artists = Call(3, "GET", "/music/artists?limit=2");
  ASSERT_TRUE(artists);
  ASSERT_EQ(artists->status, 200) << artists->body;
  EXPECT_NE(artists->body.find("{\"name\":\"Band\",\"album_count\":1,\"song_count\":2}"), std::string::npos)
      << artists->body;
  const std::string next = JsonString(artists->body, "next_after");
  ASSERT_FALSE(next.empty()) << artists->body;
  auto rest = Call(3, "GET", "/music/artists?limit=2&after=" + next);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->status, 200) << rest->body;
  EXPECT_NE(rest->body.find("\"name\":\"Various Artists\""), std::string::npos) << rest->body;

  auto band = Call(1, "GET", "/music/albums?artist=Band&sort=recent");
  ASSERT_TRUE(band);
  ASSERT_EQ(band->status, 200) << band->body;
  const std::string double_id = JsonString(band->body, "album_id");
  ASSERT_EQ(double_id.size(), 16u) << band->body;
  auto album = Call(2, "GET", "/music/albums/" + double_id);
  ASSERT_TRUE(album);
  ASSERT_EQ(album->status, 200) << album->body;
  EXPECT_EQ(JsonString(album->body, "title"), "Double");
  EXPECT_NE(album->body.find("\"song_count\":2"), std::string::npos) << album->body;
  const size_t disc1 = album->body.find("\"file_id\":\"dbl-1.mp3\"");
  const size_t disc2 = album->body.find("\"file_id\":\"dbl-2.mp3\"");
  ASSERT_NE(disc1, std::string::npos) << album->body;
  ASSERT_NE(disc2, std::string::npos) << album->body;
  EXPECT_LT(disc1, disc2) << "disc 1 track 9 before disc 2 track 1";
  EXPECT_NE(album->body.find("\"disc\":2"), std::string::npos) << album->body;
  auto abbey_album = Call(3, "GET", "/music/albums/" + abbey);
  ASSERT_TRUE(abbey_album);
  ASSERT_EQ(abbey_album->status, 200) << abbey_album->body;
  EXPECT_NE(abbey_album->body.find("\"genres\":[\"Rock\"]"), std::string::npos) << abbey_album->body;
  auto song = Call(1, "GET", "/music/songs/now-2.mp3");
  ASSERT_TRUE(song);
  EXPECT_NE(song->body.find("\"compilation\":true"), std::string::npos) << song->body;
  EXPECT_NE(song->body.find("\"genre\":\"Funk\""), std::string::npos) << song->body;
  EXPECT_NE(song->body.find("\"album_artist\":\"Various Artists\""), std::string::npos) << song->body;

  for (const char* bad : {"/music/albums/XYZ", "/music/albums/0123456789ABCDEF", "/music/albums?sort=size",
                          "/music/albums?limit=0", "/music/artists?limit=1001",
                          "/music/artists?after=garbage", "/music/albums?consistency=eventual"}) {
    auto r = Call(1, "GET", bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad << ": " << r->body;
    EXPECT_NE(r->body.find("\"code\": \"invalid_argument\""), std::string::npos) << bad << ": " << r->body;
  }
  auto unknown = Call(1, "GET", "/music/albums/0000000000000000");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_NE(unknown->body.find("\"code\": \"not_found\""), std::string::npos) << unknown->body;

  // Without a quorum: 503 with Retry-After, unless the client accepts a stale answer.
  c.Kill9(2);
  c.Kill9(3);
  std::this_thread::sleep_for(3s);
  for (const char* path : {"/music/albums", "/music/artists", "/music/albums/8c0f512e5bf1fbf3"}) {
    auto r = Call(1, "GET", path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << path << ": " << r->body;
    EXPECT_FALSE(r->Header("retry-after").empty()) << path;
    auto stale = Call(1, "GET", std::string(path) + "?consistency=stale");
    ASSERT_TRUE(stale);
    EXPECT_EQ(stale->status, 200) << path << ": " << stale->body;
    EXPECT_EQ(stale->Header("dispotify-consistency"), "stale") << path;
  }
}

TEST_F(RestE2eTest, AFullDiskAnswers507AndLeavesNothing) {
  // The node keeps more free space in reserve than any disk has: its data disk counts as full.
  Cluster& c = MakeCluster(1, {"--min-free-mib", std::to_string(uint64_t{1} << 30)});
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_TRUE(WaitReady(1));
  const std::string song = testing_audio::MakeMp3("Too Much", 20);
  auto raw = Call(1, "POST", "/music/upload?filename=full.mp3", song);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 507) << raw->body;
  EXPECT_NE(raw->body.find("\"code\": \"insufficient_storage\""), std::string::npos) << raw->body;
  EXPECT_NE(raw->body.find("kept in reserve"), std::string::npos) << raw->body;
  auto multipart = UploadMultipart(1, "full.mp3", song, "Too Much");
  ASSERT_TRUE(multipart);
  EXPECT_EQ(multipart->status, 507) << multipart->body;

  auto songs = Call(1, "GET", "/music/songs");
  ASSERT_TRUE(songs);
  EXPECT_EQ(songs->body, "{\"items\":[],\"next_after\":\"\"}") << "a refused upload became visible";
  std::error_code ec;
  size_t files_in_blobs = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(c.spec(1).data_dir + "/blobs", ec)) {
    files_in_blobs += e.is_regular_file() ? 1 : 0;
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(files_in_blobs, 0u) << "bytes of a refused upload were left on disk";
  auto alive = Call(1, "GET", "/healthz");
  ASSERT_TRUE(alive);
  EXPECT_EQ(alive->status, 200);
}

}  // namespace
}  // namespace dispotify::e2e
