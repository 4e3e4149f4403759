#include "common/logging.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace dispotify {
namespace {

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_level_ = GetLogLevel();
    SetLogSink([this](LogLevel level, const std::string& line) {
      levels_.push_back(level);
      lines_.push_back(line);
    });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(old_level_);
  }

  LogLevel old_level_ = LogLevel::kInfo;
  std::vector<LogLevel> levels_;
  std::vector<std::string> lines_;
};

TEST_F(LoggingTest, OneLineWithTimestampLevelAndLocation) {
  SetLogLevel(LogLevel::kInfo);
  DLOG_WARN << "disk " << 42 << " is full";
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& line = lines_[0];
  EXPECT_EQ(levels_[0], LogLevel::kWarning);
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find("Z W "), std::string::npos) << line;
  EXPECT_NE(line.find("logging_test.cc:"), std::string::npos) << line;
  EXPECT_NE(line.find("] disk 42 is full\n"), std::string::npos) << line;
  EXPECT_EQ(line[4], '-');   // 2025-...
  EXPECT_EQ(line[10], 'T');  // ...T12:34:56.123456Z
}

TEST_F(LoggingTest, LevelFiltersAndSkipsEvaluation) {
  SetLogLevel(LogLevel::kWarning);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  DLOG_DEBUG << count();
  DLOG_INFO << count();
  EXPECT_EQ(evaluated, 0);
  EXPECT_TRUE(lines_.empty());
  DLOG_ERROR << count();
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(lines_.size(), 1u);
  SetLogLevel(LogLevel::kDebug);
  DLOG_DEBUG << "now visible";
  EXPECT_EQ(lines_.size(), 2u);
}

TEST_F(LoggingTest, UsableInAnIfWithoutBraces) {
  SetLogLevel(LogLevel::kInfo);
  bool flag = false;
  if (flag)
    DLOG_INFO << "not logged";
  else
    DLOG_INFO << "logged";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NE(lines_[0].find("logged"), std::string::npos);
}

TEST_F(LoggingTest, ConcurrentMessagesDoNotInterleave) {
  SetLogLevel(LogLevel::kInfo);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) DLOG_INFO << "thread " << t << " message " << i << " end";
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(lines_.size(), 800u);
  for (const auto& line : lines_) EXPECT_EQ(line.substr(line.size() - 5), " end\n");
}

TEST(ParseLogLevelTest, Names) {
  LogLevel l = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("DEBUG", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warn", &l));
  EXPECT_EQ(l, LogLevel::kWarning);
  EXPECT_TRUE(ParseLogLevel("Error", &l));
  EXPECT_EQ(l, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
}

}  // namespace
}  // namespace dispotify
