#include "node/storage/stable_store.h"

#include <gtest/gtest.h>

#include "tests/mocks/fault_injecting_file_system.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::storage {
namespace {

using consensus::HardState;
using mocks::FaultInjectingFileSystem;
using mocks::FsOp;
using mocks::TempDir;

HardState Hs(uint64_t term, uint64_t vote, uint64_t commit) {
  return HardState{Term(term), NodeId(vote), LogIndex(commit)};
}

class StableStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<StableStore> OpenOk() {
    auto s = OpenStableStore(fs_, dir_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::string path() const { return JoinPath(dir_, "hardstate"); }

  TempDir tmp_;
  FaultInjectingFileSystem fs_;
  const std::string dir_ = tmp_.Sub("raft");
};

TEST_F(StableStoreTest, FreshDirectoryLoadsZero) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Load(), HardState{});
  store.reset();
  store = OpenOk();
  EXPECT_EQ(store->Load(), HardState{});
}

TEST_F(StableStoreTest, SaveLoadReopen) {
  auto store = OpenOk();
  for (uint64_t i = 1; i <= 7; ++i) {
    ASSERT_TRUE(store->Save(Hs(i, i % 3, i * 10)).ok());
    EXPECT_EQ(store->Load(), Hs(i, i % 3, i * 10));
    auto again = OpenOk();  // durable at once, whichever slot it went to
    EXPECT_EQ(again->Load(), Hs(i, i % 3, i * 10));
  }
}

TEST_F(StableStoreTest, SaveIsOneWriteAndOneSync) {
  auto store = OpenOk();
  const uint64_t writes = fs_.write_count();
  const uint64_t syncs = fs_.sync_count();
  ASSERT_TRUE(store->Save(Hs(3, 2, 1)).ok());
  EXPECT_EQ(fs_.write_count() - writes, 1u);
  EXPECT_EQ(fs_.sync_count() - syncs, 1u);
  ASSERT_TRUE(store->Save(Hs(3, 2, 1)).ok());  // unchanged: nothing to do
  EXPECT_EQ(fs_.sync_count() - syncs, 1u);
}

TEST_F(StableStoreTest, TornSaveLeavesTheOldState) {
  auto store = OpenOk();
  ASSERT_TRUE(store->Save(Hs(5, 1, 100)).ok());
  ASSERT_TRUE(store->Save(Hs(6, 2, 110)).ok());
  fs_.FailNthWrite(1, EIO, 20);  // the slot write tears after 20 bytes
  EXPECT_FALSE(store->Save(Hs(7, 3, 120)).ok());
  EXPECT_FALSE(store->Save(Hs(8, 3, 120)).ok());  // unusable after a failure
  store.reset();
  ASSERT_TRUE(fs_.Crash().ok());
  EXPECT_EQ(OpenOk()->Load(), Hs(6, 2, 110));
}

TEST_F(StableStoreTest, CrashBeforeTheSyncLeavesTheOldState) {
  auto store = OpenOk();
  ASSERT_TRUE(store->Save(Hs(5, 1, 100)).ok());
  ASSERT_TRUE(store->Save(Hs(6, 2, 110)).ok());
  fs_.FailNthSync(1);
  EXPECT_FALSE(store->Save(Hs(7, 3, 120)).ok());
  store.reset();
  ASSERT_TRUE(fs_.Crash().ok());
  EXPECT_EQ(OpenOk()->Load(), Hs(6, 2, 110));
}

TEST_F(StableStoreTest, CrashBetweenTempWriteAndRenameOnCreation) {
  fs_.Inject({FsOp::kRename, 1, EIO, false, 0, ""});
  EXPECT_FALSE(OpenStableStore(fs_, dir_).ok());
  ASSERT_TRUE(fs_.Crash().ok());
  auto store = OpenOk();
  EXPECT_EQ(store->Load(), HardState{});
  EXPECT_FALSE(fs_.Exists(path() + ".tmp"));
  ASSERT_TRUE(store->Save(Hs(1, 1, 0)).ok());
  EXPECT_EQ(OpenOk()->Load(), Hs(1, 1, 0));
}

TEST_F(StableStoreTest, DamagedOlderSlotIsIgnored) {
  auto store = OpenOk();
  ASSERT_TRUE(store->Save(Hs(2, 1, 0)).ok());  // seq 2 -> slot 0
  ASSERT_TRUE(store->Save(Hs(3, 1, 5)).ok());  // seq 3 -> slot 1
  store.reset();
  ASSERT_TRUE(fs_.FlipByte(path(), 20).ok());  // slot 0
  EXPECT_EQ(OpenOk()->Load(), Hs(3, 1, 5));
}

TEST_F(StableStoreTest, NoValidSlotIsCorruption) {
  auto store = OpenOk();
  ASSERT_TRUE(store->Save(Hs(2, 1, 0)).ok());
  store.reset();
  ASSERT_TRUE(fs_.FlipByte(path(), 20).ok());
  ASSERT_TRUE(fs_.FlipByte(path(), 4096 + 20).ok());
  auto s = OpenStableStore(fs_, dir_);
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption) << s.status().ToString();
}

TEST_F(StableStoreTest, WrongSizeIsCorruption) {
  OpenOk();
  {
    auto f = fs_.Open(path(), OpenMode::kReadWrite);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(100).ok());
  }
  EXPECT_EQ(OpenStableStore(fs_, dir_).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace dispotify::storage
