// Where a download lands: a file that is created only with the song's first byte, truncated when a
// server starts over and appended to on a resume; and an append-only stream that drops bytes it
// already wrote.

#include "cli/dispotifyctl/download_target.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/mocks/temp_dir.h"

namespace dispotify::cli {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DownloadTargetTest, FileIsCreatedOnlyWhenTheSongStarts) {
  mocks::TempDir dir;
  const std::string path = dir.Sub("out.mp3");
  {
    FileTarget t(path, false);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_TRUE(t.Finish().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  FileTarget t(path, false);
  auto skip = t.Begin(0);
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(*skip, 0u);
  ASSERT_TRUE(t.Write("hello", 5).ok());
  EXPECT_EQ(t.size(), 5u);
  ASSERT_TRUE(t.Finish().ok());
  EXPECT_EQ(Read(path), "hello");
}

TEST(DownloadTargetTest, WithoutResumeAnOldFileIsReplaced) {
  mocks::TempDir dir;
  const std::string path = dir.Sub("out.mp3");
  std::ofstream(path) << "old contents, longer";
  FileTarget t(path, false);
  EXPECT_EQ(t.size(), 0u);
  ASSERT_TRUE(t.Begin(0).ok());
  ASSERT_TRUE(t.Write("new", 3).ok());
  ASSERT_TRUE(t.Finish().ok());
  EXPECT_EQ(Read(path), "new");
}

TEST(DownloadTargetTest, ResumeAppendsAfterWhatTheFileHolds) {
  mocks::TempDir dir;
  const std::string path = dir.Sub("out.mp3");
  std::ofstream(path) << "0123";
  FileTarget t(path, true);
  EXPECT_EQ(t.size(), 4u);
  ASSERT_TRUE(t.Begin(4).ok());
  ASSERT_TRUE(t.Write("4567", 4).ok());
  // The connection broke; the next node answers the rest from byte 8.
  ASSERT_TRUE(t.Begin(8).ok());
  ASSERT_TRUE(t.Write("89", 2).ok());
  ASSERT_TRUE(t.Finish().ok());
  EXPECT_EQ(Read(path), "0123456789");
}

TEST(DownloadTargetTest, AWholeFileAnswerToARangeRequestStartsOver) {
  mocks::TempDir dir;
  const std::string path = dir.Sub("out.mp3");
  std::ofstream(path) << "0123";
  FileTarget t(path, true);
  ASSERT_TRUE(t.Begin(0).ok());
  EXPECT_EQ(t.size(), 0u);
  ASSERT_TRUE(t.Write("abc", 3).ok());
  ASSERT_TRUE(t.Finish().ok());
  EXPECT_EQ(Read(path), "abc");
}

TEST(DownloadTargetTest, FileRefusesAnAnswerBeyondWhatItHolds) {
  mocks::TempDir dir;
  FileTarget t(dir.Sub("out.mp3"), false);
  EXPECT_FALSE(t.Begin(10).ok());
}

TEST(DownloadTargetTest, StreamDropsWhatItAlreadyWrote) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  StreamTarget t(fds[1]);
  auto skip = t.Begin(0);
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(*skip, 0u);
  ASSERT_TRUE(t.Write("abcd", 4).ok());
  // A range answer for the rest: nothing to drop.
  skip = t.Begin(4);
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(*skip, 0u);
  // A whole-file answer: the first four bytes are already out.
  skip = t.Begin(0);
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(*skip, 4u);
  EXPECT_FALSE(t.Begin(5).ok());
  ::close(fds[1]);
  char buf[16];
  EXPECT_EQ(::read(fds[0], buf, sizeof(buf)), 4);
  ::close(fds[0]);
}

TEST(DownloadTargetTest, StreamReportsAClosedReader) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old {};
  ::sigaction(SIGPIPE, &ignore, &old);
  StreamTarget t(fds[1]);
  Status s = t.Write("x", 1);
  ::sigaction(SIGPIPE, &old, nullptr);
  ::close(fds[1]);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("closed by the reader"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dispotify::cli
