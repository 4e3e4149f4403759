#include "common/file_system.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tests/mocks/fault_injecting_file_system.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify {
namespace {

using mocks::FaultInjectingFileSystem;
using mocks::FsOp;
using mocks::TempDir;

std::string ReadAll(FileSystem& fs, const std::string& path) {
  auto s = ReadFileToString(fs, path);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : "";
}

TEST(PathTest, JoinAndParent) {
  EXPECT_EQ(JoinPath("a/b", "c"), "a/b/c");
  EXPECT_EQ(JoinPath("a/b/", "c"), "a/b/c");
  EXPECT_EQ(ParentDir("a/b/c"), "a/b");
  EXPECT_EQ(ParentDir("/c"), "/");
  EXPECT_EQ(ParentDir("c"), ".");
  EXPECT_EQ(ParentDir("a/b/"), "a");
}

TEST(PosixFileSystemTest, AppendPWritePReadTruncate) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  const std::string path = tmp.Sub("f");
  auto f = fs.Open(path, OpenMode::kCreate);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append("hello ").ok());
  ASSERT_TRUE((*f)->Append("world").ok());
  ASSERT_TRUE((*f)->PWrite(0, "J").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  EXPECT_EQ(*(*f)->Size(), 11u);
  char buf[32];
  auto n = (*f)->PRead(6, sizeof(buf), buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");  // short read at the end of the file
  ASSERT_TRUE((*f)->Truncate(5).ok());
  ASSERT_TRUE((*f)->Append("!").ok());  // appends at the truncated end
  EXPECT_EQ(ReadAll(fs, path), "Jello!");
  EXPECT_EQ(*fs.FileSize(path), 6u);

  // kCreate keeps the content and appends after it; kCreateTruncate empties the file.
  auto g = fs.Open(path, OpenMode::kCreate);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE((*g)->Append("?").ok());
  EXPECT_EQ(ReadAll(fs, path), "Jello!?");
  ASSERT_TRUE(fs.Open(path, OpenMode::kCreateTruncate).ok());
  EXPECT_EQ(ReadAll(fs, path), "");
}

TEST(PosixFileSystemTest, ErrorsAreValues) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  auto f = fs.Open(tmp.Sub("missing"), OpenMode::kRead);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs.Remove(tmp.Sub("missing")).code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs.FileSize(tmp.Sub("missing")).ok());
  auto ro = fs.Open(tmp.Sub("ro"), OpenMode::kCreate);
  ASSERT_TRUE(ro.ok());
  auto r = fs.Open(tmp.Sub("ro"), OpenMode::kRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Append("x").code(), StatusCode::kIoError);  // EBADF
}

TEST(PosixFileSystemTest, DirectoriesRenameRemoveList) {
  TempDir tmp;
  FileSystem& fs = DefaultFileSystem();
  const std::string deep = tmp.Sub("a/b/c");
  ASSERT_TRUE(fs.CreateDirs(deep).ok());
  ASSERT_TRUE(fs.CreateDirs(deep).ok());  // idempotent
  EXPECT_TRUE(fs.IsDirectory(deep));
  ASSERT_TRUE(WriteFileAtomically(fs, JoinPath(deep, "z"), "zz").ok());
  ASSERT_TRUE(WriteFileAtomically(fs, JoinPath(deep, "y"), "yy").ok());
  EXPECT_FALSE(fs.Exists(JoinPath(deep, "z.tmp")));
  ASSERT_TRUE(WriteFileAtomically(fs, JoinPath(deep, "y"), "new").ok());
  EXPECT_EQ(ReadAll(fs, JoinPath(deep, "y")), "new");
  auto names = fs.ListDir(deep);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"y", "z"}));

  ASSERT_TRUE(fs.Rename(JoinPath(deep, "z"), JoinPath(deep, "y")).ok());  // replaces y
  EXPECT_EQ(ReadAll(fs, JoinPath(deep, "y")), "zz");
  EXPECT_FALSE(fs.Exists(JoinPath(deep, "z")));
  ASSERT_TRUE(fs.SyncDir(deep).ok());
  ASSERT_TRUE(fs.Remove(JoinPath(deep, "y")).ok());
  ASSERT_TRUE(fs.Remove(deep).ok());  // an empty directory
  EXPECT_FALSE(fs.Exists(deep));
  EXPECT_FALSE(fs.IsDirectory(tmp.Sub("a/b/c")));

  // A file in the way of mkdir -p.
  ASSERT_TRUE(WriteFileAtomically(fs, tmp.Sub("file"), "x").ok());
  EXPECT_FALSE(fs.CreateDirs(tmp.Sub("file/sub")).ok());
  // A symbolic link to a directory is not a directory (ResetDataDir must not follow it).
  ASSERT_EQ(::symlink(tmp.Sub("a").c_str(), tmp.Sub("link").c_str()), 0);
  EXPECT_FALSE(fs.IsDirectory(tmp.Sub("link")));
  EXPECT_TRUE(fs.CreateDirs(tmp.Sub("link")).ok());
}

TEST(FaultInjectingFileSystemTest, NthWriteFailsWithPartialBytes) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  auto f = fs.Open(tmp.Sub("f"), OpenMode::kCreate);
  ASSERT_TRUE(f.ok());
  fs.FailNthWrite(2, ENOSPC, 3);
  ASSERT_TRUE((*f)->Append("abcdef").ok());
  Status s = (*f)->Append("123456");
  EXPECT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_EQ(ReadAll(fs, tmp.Sub("f")), "abcdef123");
  ASSERT_TRUE((*f)->Append("x").ok());  // not sticky
  EXPECT_EQ(fs.write_count(), 3u);
}

TEST(FaultInjectingFileSystemTest, StickyFaultAndPathFilter) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  fs.Inject({FsOp::kWrite, 1, ENOSPC, true, 0, "full"});
  auto full = fs.Open(tmp.Sub("full"), OpenMode::kCreate);
  auto other = fs.Open(tmp.Sub("other"), OpenMode::kCreate);
  ASSERT_TRUE(full.ok() && other.ok());
  EXPECT_FALSE((*full)->Append("a").ok());
  EXPECT_FALSE((*full)->Append("b").ok());
  EXPECT_TRUE((*other)->Append("c").ok());
  fs.ClearFaults();
  EXPECT_TRUE((*full)->Append("d").ok());
}

TEST(FaultInjectingFileSystemTest, CrashDropsUnsyncedData) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  const std::string path = tmp.Sub("f");
  {
    auto f = fs.Open(path, OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(fs.SyncDir(tmp.path()).ok());
    ASSERT_TRUE((*f)->Append("durable").ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Append("-lost").ok());
    ASSERT_TRUE((*f)->PWrite(0, "D").ok());  // overwrite of durable bytes, unsynced
    EXPECT_EQ(fs.SyncedLength(path), 7u);
    ASSERT_TRUE(fs.Crash().ok());
    EXPECT_FALSE((*f)->Append("x").ok());  // the handle died with the "process"
  }
  EXPECT_EQ(ReadAll(fs, path), "durable");
}

TEST(FaultInjectingFileSystemTest, CrashCanLeaveATornTail) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  const std::string path = tmp.Sub("f");
  ASSERT_TRUE(WriteFileAtomically(fs, path, "0123").ok());
  auto f = fs.Open(path, OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("456789").ok());
  ASSERT_TRUE(fs.Crash(2).ok());
  EXPECT_EQ(ReadAll(fs, path), "012345");
}

TEST(FaultInjectingFileSystemTest, CrashRemovesFilesWhoseDirectoryWasNotSynced) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  {
    auto f = fs.Open(tmp.Sub("new"), OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("data").ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(fs.Rename(tmp.Sub("new"), tmp.Sub("renamed")).ok());
  ASSERT_TRUE(fs.Crash().ok());
  EXPECT_FALSE(fs.Exists(tmp.Sub("renamed")));

  {
    auto f = fs.Open(tmp.Sub("kept"), OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("data").ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(fs.SyncDir(tmp.path()).ok());
  ASSERT_TRUE(fs.Crash().ok());
  EXPECT_EQ(ReadAll(fs, tmp.Sub("kept")), "data");
}

TEST(FaultInjectingFileSystemTest, FailedSyncLeavesDataUndurable) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  ASSERT_TRUE(WriteFileAtomically(fs, tmp.Sub("f"), "a").ok());
  auto f = fs.Open(tmp.Sub("f"), OpenMode::kReadWrite);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("b").ok());
  fs.FailNthSync(1);
  EXPECT_EQ((*f)->Sync().code(), StatusCode::kIoError);
  ASSERT_TRUE(fs.Crash().ok());
  EXPECT_EQ(ReadAll(fs, tmp.Sub("f")), "a");
}

TEST(FaultInjectingFileSystemTest, FlipByte) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  ASSERT_TRUE(WriteFileAtomically(fs, tmp.Sub("f"), "abc").ok());
  ASSERT_TRUE(fs.FlipByte(tmp.Sub("f"), 1, 0x20).ok());
  EXPECT_EQ(ReadAll(fs, tmp.Sub("f")), "aBc");
  EXPECT_FALSE(fs.FlipByte(tmp.Sub("f"), 3).ok());
}

}  // namespace
}  // namespace dispotify
