#include "node/storage/identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/mocks/fault_injecting_file_system.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::storage {
namespace {

using mocks::TempDir;

class IdentityTest : public ::testing::Test {
 protected:
  FileSystem& fs_ = DefaultFileSystem();
  TempDir tmp_;
  const std::string dir_ = tmp_.Sub("data");
};

TEST_F(IdentityTest, StampsAnEmptyDirectoryAndReloadsTheSameIdentity) {
  auto id = LoadOrStampIdentity(fs_, dir_, "c1", NodeId(3));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->cluster_id, "c1");
  EXPECT_EQ(id->node_id, NodeId(3));
  ASSERT_EQ(id->node_uuid.size(), 32u);
  EXPECT_EQ(id->node_uuid.find_first_not_of("0123456789abcdef"), std::string::npos);
  auto text = ReadFileToString(fs_, JoinPath(dir_, "IDENTITY"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "format=1\ncluster_id=c1\nnode_id=3\nnode_uuid=" + id->node_uuid + "\n");

  auto again = LoadOrStampIdentity(fs_, dir_, "c1", NodeId(3));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->node_uuid, id->node_uuid);

  const std::string other = tmp_.Sub("other");
  auto id2 = LoadOrStampIdentity(fs_, other, "c1", NodeId(4));
  ASSERT_TRUE(id2.ok());
  EXPECT_NE(id2->node_uuid, id->node_uuid);
}

TEST_F(IdentityTest, AnotherClusterIsRefused) {
  ASSERT_TRUE(LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(1)).ok());
  auto id = LoadOrStampIdentity(fs_, dir_, "beta", NodeId(1));
  ASSERT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(id.status().message(),
            "data directory " + dir_ + " belongs to cluster alpha, not beta; refusing to start");
}

TEST_F(IdentityTest, AnotherNodeIdIsRefused) {
  ASSERT_TRUE(LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(1)).ok());
  auto id = LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(2));
  ASSERT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(id.status().message(),
            "data directory " + dir_ + " belongs to node 1 of cluster alpha, not node 2; refusing to start");
}

TEST_F(IdentityTest, RemovedMemberIsRefusedUntilReset) {
  auto first = LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(2));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(fs_.CreateDirs(JoinPath(dir_, "raft/log")).ok());
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "raft/log/seg"), "old log").ok());
  EXPECT_FALSE(IsMarkedRemoved(fs_, dir_));
  ASSERT_TRUE(MarkRemoved(fs_, dir_).ok());
  EXPECT_TRUE(IsMarkedRemoved(fs_, dir_));

  auto id = LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(2));
  ASSERT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      id.status().message(),
      "this member was removed from cluster alpha; its old log must not rejoin. Reset the data directory "
      "explicitly (dispotify-node --reset) to join again");

  ASSERT_TRUE(ResetDataDir(fs_, dir_).ok());
  EXPECT_TRUE(fs_.IsDirectory(dir_));
  auto names = fs_.ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
  EXPECT_FALSE(IsMarkedRemoved(fs_, dir_));
  auto fresh = LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(2));
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->node_uuid, first->node_uuid);
}

TEST_F(IdentityTest, DataWithoutIdentityIsRefused) {
  ASSERT_TRUE(fs_.CreateDirs(JoinPath(dir_, "lost+found")).ok());
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "IDENTITY.tmp"), "half").ok());
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "log"), "entries").ok());
  auto id = LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(1));
  ASSERT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(id.status().message().find("no IDENTITY"), std::string::npos);
  ASSERT_TRUE(fs_.Remove(JoinPath(dir_, "log")).ok());
  EXPECT_TRUE(LoadOrStampIdentity(fs_, dir_, "alpha", NodeId(1)).ok());  // lost+found and temp files are fine
}

TEST_F(IdentityTest, MalformedIdentityIsCorruption) {
  ASSERT_TRUE(fs_.CreateDirs(dir_).ok());
  ASSERT_TRUE(
      WriteFileAtomically(fs_, JoinPath(dir_, "IDENTITY"), "format=1\ncluster_id=a\nnode_id=x\n").ok());
  EXPECT_EQ(LoadOrStampIdentity(fs_, dir_, "a", NodeId(1)).status().code(), StatusCode::kCorruption);
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "IDENTITY"), "format=9\n").ok());
  EXPECT_EQ(LoadOrStampIdentity(fs_, dir_, "a", NodeId(1)).status().code(), StatusCode::kCorruption);
}

TEST_F(IdentityTest, InvalidArguments) {
  EXPECT_EQ(LoadOrStampIdentity(fs_, dir_, "", NodeId(1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadOrStampIdentity(fs_, dir_, "a\nnode_id=2", NodeId(1)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadOrStampIdentity(fs_, dir_, "a", kNoNode).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(IdentityTest, ResetDoesNotFollowSymbolicLinks) {
  const std::string outside = tmp_.Sub("outside");
  ASSERT_TRUE(fs_.CreateDirs(outside).ok());
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(outside, "keep"), "precious").ok());
  ASSERT_TRUE(LoadOrStampIdentity(fs_, dir_, "a", NodeId(1)).ok());
  ASSERT_TRUE(fs_.CreateDirs(JoinPath(dir_, "x/y/z")).ok());
  ASSERT_TRUE(WriteFileAtomically(fs_, JoinPath(dir_, "x/y/z/f"), "1").ok());
  ASSERT_EQ(::symlink(outside.c_str(), JoinPath(dir_, "x/link").c_str()), 0);
  ASSERT_TRUE(ResetDataDir(fs_, dir_).ok());
  EXPECT_TRUE(fs_.ListDir(dir_)->empty());
  EXPECT_TRUE(fs_.Exists(JoinPath(outside, "keep")));
  EXPECT_TRUE(ResetDataDir(fs_, tmp_.Sub("missing")).ok());
}

}  // namespace
}  // namespace dispotify::storage
