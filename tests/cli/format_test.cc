// dispotifyctl's text output: durations, sizes, tables and the progress line, byte for byte.

#include "cli/dispotifyctl/format.h"

#include <gtest/gtest.h>

namespace dispotify::cli {
namespace {

TEST(FormatTest, Duration) {
  EXPECT_EQ(FormatDuration(0), "--:--");
  EXPECT_EQ(FormatDuration(999), "00:00");
  EXPECT_EQ(FormatDuration(1000), "00:01");
  EXPECT_EQ(FormatDuration(205'000), "03:25");
  EXPECT_EQ(FormatDuration(205'999), "03:25");  // truncated, as players show it
  EXPECT_EQ(FormatDuration(59 * 60'000 + 59'000), "59:59");
  EXPECT_EQ(FormatDuration(3'600'000), "1:00:00");
  EXPECT_EQ(FormatDuration(3'723'000), "1:02:03");
  EXPECT_EQ(FormatDuration(100ull * 3'600'000), "100:00:00");
}

TEST(FormatTest, BytesRatesSeconds) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(999), "999 B");
  EXPECT_EQ(FormatBytes(1000), "1.0 kB");
  EXPECT_EQ(FormatBytes(1'500'000), "1.5 MB");
  EXPECT_EQ(FormatBytes(999'999), "1.0 MB");  // no "1000.0 kB"
  EXPECT_EQ(FormatBytes(3'000'000'000ull), "3.0 GB");
  EXPECT_EQ(FormatRate(4'200'000, 1.0), "4.2 MB/s");
  EXPECT_EQ(FormatRate(10, 0), "-");
  EXPECT_EQ(FormatSeconds(0.25), "0.2 s");
  EXPECT_EQ(FormatSeconds(75), "1m15s");
  EXPECT_EQ(FormatSeconds(3725), "1h2m5s");
}

TEST(FormatTest, DisplayWidthCountsCodePoints) {
  EXPECT_EQ(DisplayWidth(""), 0u);
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("Beyonc\xC3\xA9"), 7u);    // é is two bytes, one column
  EXPECT_EQ(DisplayWidth("\xE2\x82\xAC"), 1u);      // €
  EXPECT_EQ(DisplayWidth("\xF0\x9F\x8E\xB5"), 1u);  // a four-byte code point
  EXPECT_EQ(DisplayWidth("\xFF\xC3"), 2u);          // malformed: one per byte
}

TEST(FormatTest, TruncateNeverSplitsACodePoint) {
  EXPECT_EQ(TruncateToWidth("short", 10), "short");
  EXPECT_EQ(TruncateToWidth("abcdef", 4), "abc\u2026");
  EXPECT_EQ(TruncateToWidth("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3), "\xC3\xA9\xC3\xA9\u2026");
  EXPECT_EQ(DisplayWidth(TruncateToWidth("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 3)), 3u);
  EXPECT_EQ(TruncateToWidth("abc", 0), "");
}

TEST(FormatTest, TableAlignsPadsAndTruncates) {
  std::vector<Column> cols = {{"NAME"}, {"N", 0, true}, {"NOTE", 5}};
  std::string out =
      FormatTable(cols, {{"a", "1", "ok"}, {"longer", "100", "truncated"}, {"\xC3\xA9t\xC3\xA9", "7"}});
  EXPECT_EQ(out,
            "NAME      N  NOTE\n"
            "a         1  ok\n"
            "longer  100  trun\u2026\n"
            "\xC3\xA9t\xC3\xA9       7\n");  // three columns wide, padded to six
}

TEST(FormatTest, TableHidesControlCharacters) {
  std::string out = FormatTable({{"X"}}, {{"a\x1b[2Jb\n"}});
  EXPECT_EQ(out, "X\na?[2Jb?\n");
}

TEST(FormatTest, EmptyTableIsTheHeader) {
  EXPECT_EQ(FormatTable({{"A"}, {"B"}}, {}), "A  B\n");
}

TEST(FormatTest, SongTable) {
  std::vector<SongRow> songs = {{"Hey-Jude.mp3", "Hey Jude", "The Beatles", "1", 431'000, 1},
                                {"x.flac", "", "", "", 0, 2}};
  EXPECT_EQ(FormatSongTable(songs),
            "FILE_ID       TITLE     ARTIST       ALBUM  DURATION\n"
            "Hey-Jude.mp3  Hey Jude  The Beatles  1         07:11\n"
            "x.flac                                         --:--\n");
}

TEST(FormatTest, ClusterStatus) {
  ClusterStatusView s;
  s.node_id = 2;
  s.role = "follower";
  s.term = 7;
  s.leader_id = 1;
  s.leader_address = "127.0.0.1:7001";
  s.commit_index = 120;
  s.applied_index = 119;
  s.replication_factor = 3;
  s.songs = 42;
  s.bytes = 123'000'000;
  s.members = {{1, "127.0.0.1:7001", "leader", true, 120, 40},
               {2, "127.0.0.1:7002", "voter", true, 119, 42},
               {3, "127.0.0.1:7003", "learner", false, 0, -1}};
  const std::string out = FormatClusterStatus(s);
  EXPECT_EQ(out,
            "leader:       node 1 (127.0.0.1:7001)\n"
            "term:         7\n"
            "commit/apply: 120 / 119  (as seen by node 2, follower)\n"
            "replication:  R=3\n"
            "songs:        42 (123.0 MB)\n"
            "under-replicated: ? (only the leader reports it)\n"
            "\n"
            "ID  ADDRESS         ROLE     HEALTHY  MATCH  FILES\n"
            " 1  127.0.0.1:7001  leader   yes        120     40\n"
            " 2  127.0.0.1:7002  voter    yes        119     42\n"
            " 3  127.0.0.1:7003  learner  NO           0      -\n");
  s.under_replicated = 2;
  s.unavailable = 1;
  s.leader_id = 0;
  const std::string leaderless = FormatClusterStatus(s);
  EXPECT_NE(leaderless.find("leader:       none known\n"), std::string::npos);
  EXPECT_NE(leaderless.find("under-replicated: 2 (1 with no healthy copy)\n"), std::string::npos);
}

TEST(FormatTest, ProgressLine) {
  const std::string line = FormatProgress("song.mp3", 3'500'000, 10'000'000, 1.0, 100);
  EXPECT_EQ(line.rfind("song.mp3  [", 0), 0u) << line;
  EXPECT_NE(line.find("]   35%  3.5 MB / 10.0 MB  3.5 MB/s"), std::string::npos) << line;
  EXPECT_LE(DisplayWidth(line), 100u);
  // The bar holds still while the numbers grow.
  const std::string later = FormatProgress("song.mp3", 10'000'000, 10'000'000, 2.0, 100);
  EXPECT_EQ(later.find(']'), line.find(']')) << line << "\n" << later;
  EXPECT_NE(later.find("[##############################]"), std::string::npos) << later;
}

TEST(FormatTest, ProgressLineFitsNarrowTerminalsAndUnknownSizes) {
  const std::string narrow = FormatProgress("a very long file name that goes on and on.flac", 5, 10, 1.0, 40);
  EXPECT_LE(DisplayWidth(narrow), 40u) << narrow;
  const std::string unknown = FormatProgress("x.mp3", 2'000'000, 0, 1.0, 80);
  EXPECT_EQ(unknown, "x.mp3  2.0 MB  2.0 MB/s");
}

}  // namespace
}  // namespace dispotify::cli
