#include "node/storage/snapshot_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/logging.h"
#include "tests/mocks/fault_injecting_file_system.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::storage {
namespace {

using consensus::Member;
using consensus::SnapshotMeta;
using mocks::FaultInjectingFileSystem;
using mocks::FsOp;
using mocks::TempDir;

SnapshotMeta Meta(uint64_t index, uint64_t term) {
  SnapshotMeta m;
  m.index = LogIndex(index);
  m.term = Term(term);
  m.conf.members[NodeId(1)] = Member{"10.0.0.1:7000", true};
  m.conf.members[NodeId(2)] = Member{"node-2.dispotify:7000", true};
  m.conf.members[NodeId(7)] = Member{"", false};  // a learner
  return m;
}

std::string Payload(size_t size, char seed) {
  std::string p(size, '\0');
  for (size_t i = 0; i < size; ++i) p[i] = static_cast<char>(seed + static_cast<char>(i * 31 % 251));
  return p;
}

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([](LogLevel, const std::string&) {});
  }
  void TearDown() override { SetLogSink(nullptr); }

  void OpenOk() {
    store_.reset();
    auto s = OpenSnapshotStore(fs_, dir_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  void CreateOk(const SnapshotMeta& meta, const std::string& payload) {
    auto w = store_->Create(meta);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (size_t off = 0; off < payload.size(); off += 1000) {
      ASSERT_TRUE((*w)->Write(std::string_view(payload).substr(off, 1000)).ok());
    }
    Status s = (*w)->Commit();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Receives `payload` in chunks of `chunk` bytes, stopping before chunk number `stop_before`.
  void Receive(const SnapshotMeta& meta, const std::string& payload, size_t chunk,
               size_t stop_before = SIZE_MAX) {
    size_t n = 0;
    for (size_t off = 0; n < stop_before; off += chunk, ++n) {
      const bool done = off + chunk >= payload.size();
      Status s = store_->WriteChunk(meta, off, std::string_view(payload).substr(off, chunk), done);
      ASSERT_TRUE(s.ok()) << s.ToString();
      if (done) break;
    }
  }

  std::string ReadPayload(LogIndex index, uint64_t chunk = 777) {
    auto size = store_->PayloadSize(index);
    EXPECT_TRUE(size.ok()) << size.status().ToString();
    std::string out;
    for (uint64_t off = 0; size.ok() && off < *size; off += chunk) {
      auto c = store_->ReadChunk(index, off, chunk);
      EXPECT_TRUE(c.ok()) << c.status().ToString();
      if (!c.ok()) break;
      out += *c;
    }
    return out;
  }

  std::vector<std::string> Files() {
    auto names = fs_.ListDir(dir_);
    EXPECT_TRUE(names.ok());
    return names.ok() ? *names : std::vector<std::string>{};
  }

  TempDir tmp_;
  FaultInjectingFileSystem fs_;
  const std::string dir_ = tmp_.Sub("snap");
  std::unique_ptr<SnapshotStore> store_;
};

TEST_F(SnapshotStoreTest, EmptyStore) {
  OpenOk();
  EXPECT_FALSE(store_->Latest().has_value());
  EXPECT_EQ(store_->PayloadSize(LogIndex(0)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadChunk(LogIndex(1), 0, 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->PayloadPath(LogIndex(1)).status().code(), StatusCode::kNotFound);
}

TEST_F(SnapshotStoreTest, CreateCommitReadReopen) {
  OpenOk();
  const std::string payload = Payload(10000, 'a');
  CreateOk(Meta(100, 3), payload);
  ASSERT_TRUE(store_->Latest().has_value());
  EXPECT_EQ(*store_->Latest(), Meta(100, 3));
  EXPECT_EQ(*store_->PayloadSize(LogIndex(100)), payload.size());
  EXPECT_EQ(ReadPayload(LogIndex(100)), payload);
  auto path = store_->PayloadPath(LogIndex(100));
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*ReadFileToString(fs_, *path), payload);  // the payload is a file of its own
  EXPECT_EQ(Files(), (std::vector<std::string>{"snapshot-00000000000000000100-3.payload",
                                               "snapshot-00000000000000000100-3.snap"}));
  // Reads at the end and past it.
  EXPECT_EQ(*store_->ReadChunk(LogIndex(100), payload.size(), 10), "");
  EXPECT_EQ(store_->ReadChunk(LogIndex(100), payload.size() + 1, 10).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ReadChunk(LogIndex(99), 0, 10).status().code(), StatusCode::kNotFound);

  OpenOk();
  EXPECT_EQ(*store_->Latest(), Meta(100, 3));
  EXPECT_EQ(ReadPayload(LogIndex(100)), payload);
}

// Members' incarnations survive a reopen (header version 2); a configuration without any is
// written as version 1, which is also what every snapshot before incarnations is.
TEST_F(SnapshotStoreTest, MembersIncarnationsAreKept) {
  OpenOk();
  SnapshotMeta with = Meta(100, 3);
  with.conf.members[NodeId(2)].node_uuid = "0123456789abcdef0123456789abcdef";
  CreateOk(with, Payload(100, 'b'));
  OpenOk();
  ASSERT_TRUE(store_->Latest().has_value());
  EXPECT_EQ(*store_->Latest(), with);
  auto header = ReadFileToString(fs_, dir_ + "/snapshot-00000000000000000100-3.snap");
  ASSERT_TRUE(header.ok());
  EXPECT_EQ((*header)[8], 2) << "version 2";

  CreateOk(Meta(200, 3), Payload(100, 'c'));
  OpenOk();
  EXPECT_EQ(*store_->Latest(), Meta(200, 3));
  header = ReadFileToString(fs_, dir_ + "/snapshot-00000000000000000200-3.snap");
  ASSERT_TRUE(header.ok());
  EXPECT_EQ((*header)[8], 1) << "no incarnation: version 1";
}

TEST_F(SnapshotStoreTest, EmptyPayloadAndIndexZero) {
  OpenOk();
  CreateOk(Meta(0, 0), "");
  EXPECT_EQ(*store_->Latest(), Meta(0, 0));
  EXPECT_EQ(*store_->PayloadSize(LogIndex(0)), 0u);
  OpenOk();
  EXPECT_EQ(*store_->Latest(), Meta(0, 0));
}

TEST_F(SnapshotStoreTest, NewerSnapshotReplacesOlderOnes) {
  OpenOk();
  CreateOk(Meta(100, 3), Payload(500, 'a'));
  CreateOk(Meta(200, 4), Payload(700, 'b'));
  EXPECT_EQ(store_->Latest()->index, LogIndex(200));
  EXPECT_EQ(Files().size(), 2u);
  EXPECT_EQ(store_->PayloadSize(LogIndex(100)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadPayload(LogIndex(200)), Payload(700, 'b'));
}

TEST_F(SnapshotStoreTest, OlderOrConflictingCommitIsRejectedAndTheSameOneIsANoop) {
  OpenOk();
  CreateOk(Meta(200, 4), Payload(700, 'b'));
  auto w = store_->Create(Meta(100, 3));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("old").ok());
  EXPECT_EQ((*w)->Commit().code(), StatusCode::kFailedPrecondition);
  auto conflicting = store_->Create(Meta(200, 5));
  ASSERT_TRUE(conflicting.ok());
  EXPECT_EQ((*conflicting)->Commit().code(), StatusCode::kFailedPrecondition);
  CreateOk(Meta(200, 4), "different bytes, same state");
  EXPECT_EQ(ReadPayload(LogIndex(200)), Payload(700, 'b'));
  EXPECT_EQ(Files().size(), 2u);  // no temp files left behind
}

TEST_F(SnapshotStoreTest, AbandonedWriterLeavesNothing) {
  OpenOk();
  {
    auto w = store_->Create(Meta(10, 1));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("partial").ok());
  }
  EXPECT_TRUE(Files().empty());
  EXPECT_FALSE(store_->Latest().has_value());
}

TEST_F(SnapshotStoreTest, ChunkedReceive) {
  OpenOk();
  CreateOk(Meta(100, 3), Payload(500, 'a'));
  const std::string payload = Payload(10000, 'z');
  Receive(Meta(300, 5), payload, 1024);
  EXPECT_EQ(*store_->Latest(), Meta(300, 5));
  EXPECT_EQ(ReadPayload(LogIndex(300)), payload);
  OpenOk();
  EXPECT_EQ(ReadPayload(LogIndex(300)), payload);
}

TEST_F(SnapshotStoreTest, ChunkedReceiveChecksOffsetsAndRestartsAtZero) {
  OpenOk();
  const std::string payload = Payload(5000, 'q');
  const SnapshotMeta meta = Meta(300, 5);
  EXPECT_EQ(store_->WriteChunk(meta, 1000, "x", false).code(),
            StatusCode::kInvalidArgument);  // nothing started
  Receive(meta, payload, 1000, 2);          // [0, 2000)
  EXPECT_EQ(store_->WriteChunk(meta, 3000, "x", false).code(), StatusCode::kInvalidArgument);  // a hole
  EXPECT_EQ(store_->WriteChunk(meta, 1000, "x", false).code(), StatusCode::kInvalidArgument);  // a repeat
  EXPECT_EQ(store_->WriteChunk(Meta(301, 5), 2000, "x", false).code(), StatusCode::kInvalidArgument);
  // The leader starts over: offset 0 discards the partial one.
  Receive(meta, payload, 1000);
  EXPECT_EQ(ReadPayload(LogIndex(300)), payload);
  EXPECT_EQ(Files().size(), 2u);
}

TEST_F(SnapshotStoreTest, CrashInTheMiddleOfAReceiveKeepsThePreviousSnapshot) {
  OpenOk();
  CreateOk(Meta(100, 3), Payload(5000, 'a'));
  Receive(Meta(300, 5), Payload(10000, 'z'), 1000, 4);
  EXPECT_TRUE(fs_.Exists(JoinPath(dir_, "receiving.tmp")));
  store_.reset();
  ASSERT_TRUE(fs_.Crash(123).ok());
  OpenOk();
  EXPECT_FALSE(fs_.Exists(JoinPath(dir_, "receiving.tmp")));
  EXPECT_EQ(*store_->Latest(), Meta(100, 3));
  EXPECT_EQ(ReadPayload(LogIndex(100)), Payload(5000, 'a'));
  // Offset 0 after the restart is needed again.
  EXPECT_EQ(store_->WriteChunk(Meta(300, 5), 4000, "x", false).code(), StatusCode::kInvalidArgument);
}

TEST_F(SnapshotStoreTest, CrashBeforeTheHeaderIsCommittedKeepsThePreviousSnapshot) {
  OpenOk();
  CreateOk(Meta(100, 3), Payload(5000, 'a'));
  fs_.Inject({FsOp::kRename, 1, EIO, false, 0, ".snap.tmp"});  // the commit point fails
  const std::string payload = Payload(3000, 'z');
  EXPECT_FALSE(store_->WriteChunk(Meta(300, 5), 0, payload, true).ok());
  EXPECT_EQ(store_->Latest()->index, LogIndex(100));
  store_.reset();
  ASSERT_TRUE(fs_.Crash().ok());
  OpenOk();
  EXPECT_EQ(*store_->Latest(), Meta(100, 3));
  EXPECT_EQ(Files().size(), 2u);  // no orphan payload, no temp file
}

TEST_F(SnapshotStoreTest, OrphanPayloadAndOlderLeftoversAreRemovedOnOpen) {
  OpenOk();
  CreateOk(Meta(100, 3), Payload(500, 'a'));
  const std::string saved = tmp_.Sub("saved");
  std::filesystem::copy(dir_, saved);
  CreateOk(Meta(200, 4), Payload(700, 'b'));
  store_.reset();
  // As if the deletion of the old snapshot was lost in a crash, plus a payload without header.
  for (const auto& e : std::filesystem::directory_iterator(saved)) {
    std::filesystem::copy(e.path(), JoinPath(dir_, e.path().filename().string()));
  }
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "snapshot-00000000000000000300-4.payload"), "x").ok());
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "creating-3.tmp"), "x").ok());
  OpenOk();
  EXPECT_EQ(store_->Latest()->index, LogIndex(200));
  EXPECT_EQ(Files(), (std::vector<std::string>{"snapshot-00000000000000000200-4.payload",
                                               "snapshot-00000000000000000200-4.snap"}));
}

TEST_F(SnapshotStoreTest, DamagedNewestSnapshotFallsBackToTheNewestValidOne) {
  OpenOk();
  CreateOk(Meta(100, 3), Payload(500, 'a'));
  const std::string saved = tmp_.Sub("saved");
  std::filesystem::copy(dir_, saved);
  CreateOk(Meta(200, 4), Payload(700, 'b'));
  store_.reset();
  for (const auto& e : std::filesystem::directory_iterator(saved)) {
    std::filesystem::copy(e.path(), JoinPath(dir_, e.path().filename().string()));
  }
  ASSERT_TRUE(fs_.FlipByte(JoinPath(dir_, "snapshot-00000000000000000200-4.payload"), 600).ok());
  OpenOk();
  EXPECT_EQ(*store_->Latest(), Meta(100, 3));
  EXPECT_EQ(ReadPayload(LogIndex(100)), Payload(500, 'a'));

  // A damaged header is skipped the same way.
  ASSERT_TRUE(fs_.FlipByte(JoinPath(dir_, "snapshot-00000000000000000100-3.snap"), 30).ok());
  OpenOk();
  EXPECT_FALSE(store_->Latest().has_value());
}

TEST_F(SnapshotStoreTest, WriteErrorAbandonsTheReceive) {
  OpenOk();
  fs_.FailNthWrite(2, ENOSPC);
  const SnapshotMeta meta = Meta(300, 5);
  ASSERT_TRUE(store_->WriteChunk(meta, 0, "abc", false).ok());
  EXPECT_EQ(store_->WriteChunk(meta, 3, "def", false).code(), StatusCode::kNoSpace);
  EXPECT_EQ(store_->WriteChunk(meta, 3, "def", false).code(), StatusCode::kInvalidArgument);  // start over
  EXPECT_TRUE(Files().empty());
  ASSERT_TRUE(store_->WriteChunk(meta, 0, "abcdef", true).ok());
  EXPECT_EQ(ReadPayload(LogIndex(300)), "abcdef");
}

}  // namespace
}  // namespace dispotify::storage
