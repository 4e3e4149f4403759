// RaftNode with real storage in a temp dir: a one-node cluster proposes, reads, snapshots,
// restarts and recovers; group commit shares fsyncs; a storage failure stops the node.

#include "node/server/raft_node.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/file_system.h"
#include "node/kv/kv_state_machine.h"
#include "node/storage/log_store.h"
#include "node/storage/snapshot_store.h"
#include "node/storage/stable_store.h"

namespace dispotify::server {
namespace {

using namespace std::chrono_literals;

class NullTransport final : public transport::Transport {
 public:
  void Send(std::vector<consensus::Message> msgs) override { sent += msgs.size(); }
  void UpdatePeers(const std::map<NodeId, std::string>& addresses) override { peers = addresses; }
  void Shutdown() override {}
  std::atomic<size_t> sent{0};
  std::map<NodeId, std::string> peers;
};

// Counts syncs and can be told to fail them.
class CountingLog final : public storage::LogStore {
 public:
  explicit CountingLog(std::unique_ptr<storage::LogStore> inner) : inner_(std::move(inner)) {}
  LogIndex first_index() const override { return inner_->first_index(); }
  LogIndex last_index() const override { return inner_->last_index(); }
  Result<std::vector<consensus::Entry>> Read(LogIndex from, LogIndex to) const override {
    return inner_->Read(from, to);
  }
  Status Append(const std::vector<consensus::Entry>& entries) override {
    appended += entries.size();
    return inner_->Append(entries);
  }
  Status Sync() override {
    ++syncs;
    if (fail_syncs) return Status::IoError("injected fsync failure");
    return inner_->Sync();
  }
  Status CompactPrefix(LogIndex upto) override { return inner_->CompactPrefix(upto); }
  Status Reset(LogIndex next) override { return inner_->Reset(next); }

  std::atomic<size_t> syncs{0};
  std::atomic<size_t> appended{0};
  std::atomic<bool> fail_syncs{false};

 private:
  std::unique_ptr<storage::LogStore> inner_;
};

struct Harness {
  std::string dir;
  std::unique_ptr<CountingLog> log;
  std::unique_ptr<storage::StableStore> stable;
  std::unique_ptr<storage::SnapshotStore> snapshots;
  NullTransport transport;
  kv::KvStateMachine kv;
  std::unique_ptr<RaftNode> node;
  std::promise<int> exited;

  Status Open(const std::string& data_dir, uint64_t snapshot_entries = 10000, bool join = false) {
    dir = data_dir;
    FileSystem& fs = DefaultFileSystem();
    auto l = storage::OpenSegmentedLog(fs, dir + "/log");
    if (!l.ok()) return l.status();
    log = std::make_unique<CountingLog>(std::move(l).value());
    auto s = storage::OpenStableStore(fs, dir + "/state");
    if (!s.ok()) return s.status();
    stable = std::move(s).value();
    auto sn = storage::OpenSnapshotStore(fs, dir + "/snapshots");
    if (!sn.ok()) return sn.status();
    snapshots = std::move(sn).value();
    RaftNodeOptions opts;
    opts.id = NodeId(1);
    opts.data_dir = dir;
    opts.tick_ms = 10;
    opts.snapshot_entries = snapshot_entries;
    opts.join = join;
    opts.initial_conf.members[NodeId(1)] = consensus::Member{"127.0.0.1:1", true};
    RaftNodeDeps deps{&fs, log.get(), stable.get(), snapshots.get(), &transport, &kv, nullptr};
    auto n = RaftNode::Open(opts, deps);
    if (!n.ok()) return n.status();
    node = std::move(n).value();
    node->Start([this](int code) { exited.set_value(code); });
    return Status::Ok();
  }

  bool WaitLeader(std::chrono::milliseconds timeout = 5s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (node->status().role == consensus::Role::kLeader) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  Status Put(const std::string& k, const std::string& v, LogIndex* index = nullptr) {
    std::promise<std::pair<Status, LogIndex>> p;
    auto f = p.get_future();
    node->Propose(kv::EncodePut(k, v), [&p](const Status& st, LogIndex i, std::string) {
      p.set_value({st, i});
    });
    if (f.wait_for(10s) != std::future_status::ready) return Status::Timeout("put");
    auto [st, i] = f.get();
    if (index) *index = i;
    return st;
  }
};

class RaftNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/raft-node-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(RaftNodeTest, SingleNodeProposeReadRestart) {
  LogIndex last;
  {
    Harness h;
    ASSERT_TRUE(h.Open(dir_).ok());
    ASSERT_TRUE(h.WaitLeader());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(h.Put("k" + std::to_string(i), "v" + std::to_string(i), &last).ok());
    }
    std::promise<std::pair<Status, LogIndex>> p;
    h.node->ReadIndex([&p](const Status& st, LogIndex i) { p.set_value({st, i}); });
    auto [st, read_index] = p.get_future().get();
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_GE(read_index, last);
    EXPECT_GE(h.kv.applied_index(), read_index);
    EXPECT_EQ(h.kv.Get("k49").value_or(""), "v49");
    h.node->Stop();
    EXPECT_EQ(h.node->exit_code(), kExitOk);
  }
  {
    Harness h;
    ASSERT_TRUE(h.Open(dir_).ok());
    ASSERT_TRUE(h.WaitLeader());
    // Committed entries after the snapshot are applied again once the new term commits.
    auto end = std::chrono::steady_clock::now() + 5s;
    while (h.kv.applied_index() < last && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(5ms);
    ASSERT_GE(h.kv.applied_index(), last);
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(h.kv.Get("k" + std::to_string(i)).value_or(""), "v" + std::to_string(i));
    ASSERT_TRUE(h.Put("after", "restart").ok());
  }
}

TEST_F(RaftNodeTest, SnapshotsCompactAndRestoreOnRestart) {
  LogIndex last;
  {
    Harness h;
    ASSERT_TRUE(h.Open(dir_, /*snapshot_entries=*/40).ok());
    ASSERT_TRUE(h.WaitLeader());
    for (int i = 0; i < 130; ++i) ASSERT_TRUE(h.Put("k" + std::to_string(i), std::to_string(i), &last).ok());
    auto end = std::chrono::steady_clock::now() + 2s;
    while (h.node->status().snapshot_index < LogIndex(80) && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_GE(h.node->status().snapshot_index, LogIndex(80));
    ASSERT_TRUE(h.snapshots->Latest().has_value());
  }
  Harness h;
  ASSERT_TRUE(h.Open(dir_, 40).ok());
  // Restored from the snapshot before the loop even starts.
  EXPECT_GE(h.kv.applied_index(), LogIndex(80));
  ASSERT_TRUE(h.WaitLeader());
  auto end = std::chrono::steady_clock::now() + 5s;
  while (h.kv.applied_index() < last && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(5ms);
  for (int i = 0; i < 130; ++i) EXPECT_EQ(h.kv.Get("k" + std::to_string(i)).value_or("-"), std::to_string(i));
}

TEST_F(RaftNodeTest, ConcurrentProposalsShareFsyncs) {
  Harness h;
  ASSERT_TRUE(h.Open(dir_).ok());
  ASSERT_TRUE(h.WaitLeader());
  const size_t syncs_before = h.log->syncs.load();
  constexpr int kProposals = 2000;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  std::promise<void> all;
  for (int i = 0; i < kProposals; ++i) {
    h.node->Propose(kv::EncodePut("c" + std::to_string(i), "x"),
                    [&](const Status& st, LogIndex, std::string) {
                      if (st.ok()) ++ok;
                      if (++done == kProposals) all.set_value();
                    });
  }
  ASSERT_EQ(all.get_future().wait_for(20s), std::future_status::ready);
  EXPECT_EQ(ok.load(), kProposals);
  const size_t syncs = h.log->syncs.load() - syncs_before;
  std::printf("%d proposals, %zu log syncs\n", kProposals, syncs);
  EXPECT_LT(syncs, static_cast<size_t>(kProposals) / 4);
}

TEST_F(RaftNodeTest, StorageFailureStopsTheNode) {
  Harness h;
  ASSERT_TRUE(h.Open(dir_).ok());
  ASSERT_TRUE(h.WaitLeader());
  ASSERT_TRUE(h.Put("before", "1").ok());
  h.log->fail_syncs = true;
  Status st = h.Put("during", "2");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.code(), StatusCode::kOk);
  auto f = h.exited.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), kExitStorageError);
  EXPECT_EQ(h.node->exit_code(), kExitStorageError);
  // Later calls fail at once instead of hanging.
  EXPECT_EQ(h.Put("after", "3").code(), StatusCode::kUnavailable);
}

TEST_F(RaftNodeTest, JoiningNodeWaitsAndRefusesProposals) {
  Harness h;
  ASSERT_TRUE(h.Open(dir_, 10000, /*join=*/true).ok());
  std::this_thread::sleep_for(200ms);
  NodeStatus st = h.node->status();
  EXPECT_NE(st.role, consensus::Role::kLeader);
  EXPECT_TRUE(st.conf.members.empty());
  EXPECT_EQ(h.Put("k", "v").code(), StatusCode::kNotLeader);
}

// bootstrap_node_id (node/server/config.h) turns into join on every node but one; a node whose
// data directory holds Raft state resumes from it whatever `join` says, so a restarted member
// (bootstrap node or not) never waits to be added again nor bootstraps over its own log.
TEST_F(RaftNodeTest, ExistingDataDirResumesWhateverJoinSays) {
  {
    Harness h;
    ASSERT_TRUE(h.Open(dir_).ok());  // bootstraps {1}
    ASSERT_TRUE(h.WaitLeader());
    ASSERT_TRUE(h.Put("k", "v").ok());
  }
  {
    Harness h;
    ASSERT_TRUE(h.Open(dir_, 10000, /*join=*/true).ok());
    ASSERT_TRUE(h.WaitLeader());
    EXPECT_EQ(h.node->status().conf.members.size(), 1u);
    auto end = std::chrono::steady_clock::now() + 5s;
    while (!h.kv.Get("k").has_value() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(5ms);
    EXPECT_EQ(h.kv.Get("k").value_or(""), "v");
    ASSERT_TRUE(h.Put("k2", "v2").ok());
  }
  // And back without join: the log is not bootstrapped a second time.
  Harness h;
  ASSERT_TRUE(h.Open(dir_).ok());
  ASSERT_TRUE(h.WaitLeader());
  auto end = std::chrono::steady_clock::now() + 5s;
  while (!h.kv.Get("k2").has_value() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(h.kv.Get("k2").value_or(""), "v2");
  EXPECT_EQ(h.node->status().conf.members.size(), 1u);
}

}  // namespace
}  // namespace dispotify::server
