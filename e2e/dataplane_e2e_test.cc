// The data plane with real dispotify-node processes on loopback: uploads through the Files gRPC
// service, copies checked byte for byte on every node's disk, kill -9 of replicas, corrupted
// copies, replication factor changes, loss of quorum, and catalog locks across a leader change.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "common/sha256.h"
#include "dispotify/v1/cluster.grpc.pb.h"
#include "dispotify/v1/files.grpc.pb.h"
#include "e2e/cluster_harness.h"
#include "e2e/files_client.h"
#include "node/catalog/commands.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;

constexpr size_t kBlobHeaderSize = 256;  // node/replication/blob_store.h

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return ToHex(h.Final());
}

// Where node `data_dir` keeps file_id's blob (the blob store's documented layout).
std::string BlobPath(const std::string& data_dir, const std::string& file_id) {
  return data_dir + "/blobs/" + Sha256Hex(file_id).substr(0, 2) + "/" + file_id;
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class DataPlaneE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  Cluster& MakeCluster(int n, const std::vector<std::string>& flags = {}) {
    cluster_ = std::make_unique<Cluster>(n, "dataplane");
    std::vector<std::string> common = {"--repair-interval-ms", "200",  "--inventory-interval-ms", "500",
                                       "--orphan-grace-ms",    "2000", "--scrub-interval-s",      "0",
                                       "--repair-bytes-per-s", "0"};
    common.insert(common.end(), flags.begin(), flags.end());
    cluster_->SetCommonFlags(common);
    return *cluster_;
  }

  FilesClient& Files(uint64_t id) {
    auto& client = files_[id];
    if (!client)
      client = std::make_unique<FilesClient>(cluster_->spec(id).address(), cluster_->ChannelCredentials());
    return *client;
  }
  grpc::Status Upload(uint64_t via, const std::string& file_id, const std::string& content,
                      v1::UploadResponse* resp) {
    return Files(via).Upload(file_id, content, resp);
  }
  grpc::Status UploadEventually(uint64_t via, const std::string& file_id, const std::string& content,
                                std::chrono::milliseconds budget = 30s) {
    return Files(via).UploadEventually(file_id, content, budget);
  }
  grpc::Status Download(uint64_t via, const std::string& file_id, std::string* out) {
    return Files(via).Download(file_id, out);
  }
  std::optional<v1::SongInfo> GetSong(uint64_t via, const std::string& file_id) {
    return Files(via).GetSong(file_id);
  }
  grpc::Status SetFactor(uint64_t via, uint32_t factor) { return Files(via).SetReplicationFactor(factor); }

  // Polls `pred` every 100 ms until it holds or `timeout` passes.
  static bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return pred();
  }

  // The content bytes of node `id`'s copy, read from its disk.
  std::optional<std::string> CopyOnDisk(uint64_t id, const std::string& file_id) {
    auto raw = ReadWholeFile(BlobPath(cluster_->spec(id).data_dir, file_id));
    if (!raw || raw->size() < kBlobHeaderSize) return std::nullopt;
    return raw->substr(kBlobHeaderSize);
  }

  std::unique_ptr<Cluster> cluster_;
  std::map<uint64_t, std::unique_ptr<FilesClient>> files_;
};

TEST_F(DataPlaneE2eTest, UploadReachesEveryReplicaAndSurvivesKill9OfOne) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  const std::string content = RandomBytes(3 * 1024 * 1024 + 17, 1);
  ASSERT_TRUE(UploadEventually(1, "first-song", content).ok());

  // Acknowledged with a quorum; then repair (if needed) brings it to R = 3.
  ASSERT_TRUE(Eventually(
      [&] {
        auto s = GetSong(2, "first-song");
        return s && HealthyReplicas(*s).size() == 3;
      },
      20s));
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(CopyOnDisk(id, "first-song"), content) << "node " << id;
  // Another node's catalog may trail by a few milliseconds: ask the one that answered above.
  auto song = GetSong(2, "first-song");
  ASSERT_TRUE(song);
  EXPECT_EQ(song->sha256(), Sha256Hex(content));
  EXPECT_EQ(song->size_bytes(), content.size());

  // kill -9 a replica: reads and uploads go on with the other two.
  c.Kill9(3);
  std::string got;
  ASSERT_TRUE(Download(1, "first-song", &got).ok());
  EXPECT_EQ(got, content);
  const std::string second = RandomBytes(1024 * 1024, 2);
  ASSERT_TRUE(UploadEventually(2, "while-three-is-down", second).ok());
  auto s2 = GetSong(2, "while-three-is-down");  // the node that took the upload has applied it
  ASSERT_TRUE(s2);
  EXPECT_FALSE(HealthyReplicas(*s2).contains(3));

  // Back: node 3 resyncs and repair restores R = 3 for the file it missed.
  c.Start(3);
  ASSERT_TRUE(Eventually(
      [&] {
        auto s = GetSong(3, "while-three-is-down");
        return s && HealthyReplicas(*s).size() == 3;
      },
      30s));
  EXPECT_EQ(CopyOnDisk(3, "while-three-is-down"), second);
  ASSERT_TRUE(Download(3, "while-three-is-down", &got).ok());
  EXPECT_EQ(got, second);
}

// A replica that hangs (SIGSTOP: the connection stays open, nothing answers) must not hold an
// upload up until its finish timeout (30 s): once a quorum confirmed, the upload stops waiting
// for it, and repair adds the copy when the node is back.
TEST_F(DataPlaneE2eTest, AHungReplicaDoesNotHoldUploadsUp) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  const uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(UploadEventually(leader, "warm-up", RandomBytes(1000, 7)).ok());
  const uint64_t hung = leader == 3 ? 2 : 3;
  c.process(hung)->Signal(SIGSTOP);
  const std::string content = RandomBytes(1024 * 1024 + 5, 8);
  v1::UploadResponse resp;
  // A deadline well below the hung replica's 30 s finish timeout.
  grpc::Status st = Files(leader).Upload("while-hung", content, &resp, 15s);
  c.process(hung)->Signal(SIGCONT);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(HealthyReplicas(resp.song()).size(), 2u);
  EXPECT_FALSE(HealthyReplicas(resp.song()).contains(hung));

  ASSERT_TRUE(Eventually(
      [&] {
        auto s = GetSong(leader, "while-hung");
        return s && HealthyReplicas(*s).size() == 3;
      },
      30s));
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(CopyOnDisk(id, "while-hung"), content) << "node " << id;
}

TEST_F(DataPlaneE2eTest, CorruptCopyIsNotServedAndIsRepaired) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  const std::string content = RandomBytes(2 * 1024 * 1024, 3);
  ASSERT_TRUE(UploadEventually(1, "fragile", content).ok());
  ASSERT_TRUE(Eventually(
      [&] {
        auto s = GetSong(1, "fragile");
        return s && HealthyReplicas(*s).size() == 3;
      },
      20s));

  // Flip one byte in the middle of node 2's copy, behind the node's back.
  const std::string path = BlobPath(c.spec(2).data_dir, "fragile");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekg(static_cast<std::streamoff>(kBlobHeaderSize + content.size() / 2));
    char b = 0;
    f.read(&b, 1);
    b = static_cast<char>(b ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(kBlobHeaderSize + content.size() / 2));
    f.write(&b, 1);
  }
  ASSERT_NE(CopyOnDisk(2, "fragile"), content);

  // Node 2 reads its own copy first: the bad bytes are never delivered, another copy serves.
  std::string got;
  ASSERT_TRUE(Download(2, "fragile", &got).ok());
  EXPECT_EQ(got, content);

  // The bad copy was reported; repair replaces it with a verified one.
  ASSERT_TRUE(Eventually([&] { return CopyOnDisk(2, "fragile") == content; }, 30s));
  ASSERT_TRUE(Eventually(
      [&] {
        auto s = GetSong(1, "fragile");
        return s && HealthyReplicas(*s).size() == 3;
      },
      20s));
}

TEST_F(DataPlaneE2eTest, ReplicationFactorUpThenDownNeverBelowTarget) {
  Cluster& c = MakeCluster(5);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  std::map<std::string, std::string> files;
  for (int i = 0; i < 6; ++i) {
    std::string id = "rf-" + std::to_string(i);
    files[id] = RandomBytes(256 * 1024 + static_cast<size_t>(i), 10 + static_cast<uint32_t>(i));
    ASSERT_TRUE(UploadEventually(static_cast<uint64_t>(1 + i % 5), id, files[id]).ok()) << id;
  }
  auto min_healthy = [&] {
    size_t m = 99;
    for (const auto& [id, content] : files) {
      auto s = GetSong(1, id);
      m = std::min(m, s ? HealthyReplicas(*s).size() : 0);
    }
    return m;
  };
  ASSERT_TRUE(Eventually([&] { return min_healthy() == 3; }, 30s));

  {
    const grpc::Status set = SetFactor(1, 5);
    ASSERT_TRUE(set.ok()) << set.error_code() << ": " << set.error_message();
  }
  ASSERT_TRUE(Eventually(
      [&] {
        size_t m = min_healthy();
        EXPECT_GE(m, 3u) << "a file dropped below its old target while copies were added";
        return m == 5;
      },
      60s));
  for (const auto& [id, content] : files) {
    for (uint64_t n = 1; n <= 5; ++n) EXPECT_EQ(CopyOnDisk(n, id), content) << id << " on node " << n;
  }

  {
    const grpc::Status set = SetFactor(2, 2);
    ASSERT_TRUE(set.ok()) << set.error_code() << ": " << set.error_message();
  }
  ASSERT_TRUE(Eventually(
      [&] {
        size_t max_copies = 0;
        for (const auto& [id, content] : files) {
          auto s = GetSong(1, id);
          if (!s) return false;
          size_t healthy = HealthyReplicas(*s).size();
          EXPECT_GE(healthy, 2u) << id << " dropped below the new target while trimming";
          max_copies = std::max<size_t>(max_copies, static_cast<size_t>(s->replicas_size()));
        }
        return max_copies == 2;
      },
      60s));
  // Trimmed copies leave the disks too.
  ASSERT_TRUE(Eventually(
      [&] {
        for (const auto& [id, content] : files) {
          int on_disk = 0;
          for (uint64_t n = 1; n <= 5; ++n) on_disk += CopyOnDisk(n, id).has_value() ? 1 : 0;
          if (on_disk != 2) return false;
        }
        return true;
      },
      30s));
  std::string got;
  for (const auto& [id, content] : files) {
    ASSERT_TRUE(Download(3, id, &got).ok()) << id;
    EXPECT_EQ(got, content) << id;
  }
}

TEST_F(DataPlaneE2eTest, AMemberDownForLongIsReplacedThenTakesItsCopiesBack) {
  Cluster& c = MakeCluster(4, {"--dead-after-s", "3"});
  c.StartAll();
  const uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  std::map<std::string, std::string> files;
  for (int i = 0; i < 8; ++i) {
    std::string id = "dead-" + std::to_string(i);
    files[id] = RandomBytes(128 * 1024 + static_cast<size_t>(i), 40 + static_cast<uint32_t>(i));
    ASSERT_TRUE(UploadEventually(leader, id, files[id]).ok()) << id;
  }
  // Every file has 3 copies that are healthy in the catalog on nodes of `on`.
  auto three_healthy_on = [&](const std::set<uint64_t>& on) {
    for (const auto& [id, content] : files) {
      auto s = GetSong(leader, id);
      if (!s) return false;
      size_t n = 0;
      for (uint64_t node : HealthyReplicas(*s)) n += on.contains(node) ? 1 : 0;
      if (n != 3) return false;
    }
    return true;
  };
  const std::set<uint64_t> all = {1, 2, 3, 4};
  ASSERT_TRUE(Eventually([&] { return three_healthy_on(all); }, 30s));
  // A victim that holds copies (with 8 files on 4 nodes at R=3, every node holds some).
  const uint64_t victim = leader == 4 ? 3 : 4;
  std::set<uint64_t> alive = all;
  alive.erase(victim);
  c.Kill9(victim);
  // After dead_after_s, every file is back to 3 healthy copies on the nodes that are up.
  ASSERT_TRUE(Eventually([&] { return three_healthy_on(alive); }, 40s));
  for (const auto& [id, content] : files) {
    int on_disk = 0;
    for (uint64_t n : alive) on_disk += CopyOnDisk(n, id) == content ? 1 : 0;
    EXPECT_EQ(on_disk, 3) << id;
  }

  // The member returns: it is a placement node again, and the copies made meanwhile are trimmed
  // once it holds its share, so every file ends with exactly 3 copies, in the catalog and on disk.
  c.Start(victim);
  ASSERT_TRUE(Eventually(
      [&] {
        for (const auto& [id, content] : files) {
          auto s = GetSong(leader, id);
          if (!s || s->replicas_size() != 3 || HealthyReplicas(*s).size() != 3) return false;
          int on_disk = 0;
          for (uint64_t n : all) on_disk += CopyOnDisk(n, id).has_value() ? 1 : 0;
          if (on_disk != 3) return false;
        }
        return true;
      },
      60s));
  int on_victim = 0;
  for (const auto& [id, content] : files) on_victim += CopyOnDisk(victim, id) == content ? 1 : 0;
  EXPECT_GT(on_victim, 0) << "the returning member got none of its share back";
  std::string got;
  for (const auto& [id, content] : files) {
    ASSERT_TRUE(Download(victim, id, &got).ok()) << id;
    EXPECT_EQ(got, content) << id;
  }
}

TEST_F(DataPlaneE2eTest, WithoutQuorumUploadsFailFastAndLeaveNothing) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  ASSERT_TRUE(UploadEventually(1, "before", RandomBytes(100000, 4)).ok());
  c.Kill9(2);
  c.Kill9(3);
  // Let node 1 notice (check-quorum, health checks).
  std::this_thread::sleep_for(3s);

  const std::string content = RandomBytes(512 * 1024, 5);
  v1::UploadResponse resp;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status st = Upload(1, "orphan", content, &resp);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_LT(took, 15s) << "an upload without quorum must fail, not hang";
  EXPECT_FALSE(GetSong(1, "orphan").has_value());
  EXPECT_FALSE(CopyOnDisk(1, "orphan").has_value()) << "a failed upload left its bytes behind";

  c.Start(2);
  ASSERT_TRUE(UploadEventually(1, "orphan", content, 30s).ok());
  std::string got;
  ASSERT_TRUE(Download(2, "orphan", &got).ok());
  EXPECT_EQ(got, content);
}

TEST_F(DataPlaneE2eTest, LocksKeepTheirOwnerAcrossALeaderChange) {
  Cluster& c = MakeCluster(3);
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  auto propose = [&](const catalog::CommandBody& body, v1::ProposeResponse* resp) {
    // Follow the leader: Propose is leader-only.
    for (int attempt = 0; attempt < 100; ++attempt) {
      uint64_t l = c.WaitLeader(10s);
      if (l == 0) break;
      auto stub = v1::Cluster::NewStub(grpc::CreateChannel(c.spec(l).address(), c.ChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      v1::ProposeRequest req;
      req.set_command(catalog::EncodeCommand(catalog::Command{0, body}));
      grpc::Status st = stub->Propose(&ctx, req, resp);
      if (st.ok()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  v1::ProposeResponse resp;
  ASSERT_TRUE(propose(catalog::AcquireLockCmd{"playlist:42", "alice", 60000}, &resp));
  ASSERT_EQ(resp.code(), 0u) << resp.message();
  const std::string token = resp.value();

  c.Kill9(leader);
  ASSERT_NE(c.WaitLeader(20s, leader), 0u);
  ASSERT_TRUE(propose(catalog::AcquireLockCmd{"playlist:42", "bob", 60000}, &resp));
  EXPECT_EQ(static_cast<StatusCode>(resp.code()), StatusCode::kFailedPrecondition) << "bob took alice's lock";
  ASSERT_TRUE(propose(catalog::ReleaseLockCmd{"playlist:42", "bob"}, &resp));
  EXPECT_EQ(static_cast<StatusCode>(resp.code()), StatusCode::kFailedPrecondition)
      << "bob released alice's lock";
  ASSERT_TRUE(propose(catalog::RenewLockCmd{"playlist:42", "alice", 60000}, &resp));
  EXPECT_EQ(resp.code(), 0u) << resp.message();
  EXPECT_EQ(resp.value(), token) << "a renewal keeps the fencing token";
  ASSERT_TRUE(propose(catalog::ReleaseLockCmd{"playlist:42", "alice"}, &resp));
  EXPECT_EQ(resp.code(), 0u);
  ASSERT_TRUE(propose(catalog::AcquireLockCmd{"playlist:42", "bob", 200}, &resp));
  EXPECT_EQ(resp.code(), 0u);
  EXPECT_GT(std::stoull(resp.value()), std::stoull(token)) << "a new holder gets a larger fencing token";
  // bob's 200 ms expire; then carol may take it.
  std::this_thread::sleep_for(400ms);
  ASSERT_TRUE(propose(catalog::AcquireLockCmd{"playlist:42", "carol", 1000}, &resp));
  EXPECT_EQ(resp.code(), 0u) << "an expired lock must be free: " << resp.message();
}

}  // namespace
}  // namespace dispotify::e2e
