#pragma once
// Text output of dispotifyctl: tables, durations, sizes, rates and the progress line. Pure
// functions, so that the exact output is unit-tested.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dispotify::cli {

// 205'000 ms -> "03:25"; an hour or more -> "1:02:03"; 0 (unknown: tags not read) -> "--:--".
// Seconds are truncated, as players show them.
std::string FormatDuration(uint64_t ms);

// Decimal units, as on disks and in MB/s: 999 -> "999 B", 1'500'000 -> "1.5 MB".
std::string FormatBytes(uint64_t bytes);
// "4.2 MB/s"; "-" when no time has passed.
std::string FormatRate(uint64_t bytes, double seconds);
// 0.25 -> "0.3 s", 75 -> "1m15s".
std::string FormatSeconds(double seconds);

// Terminal columns of UTF-8 text: one per code point (combining marks and wide CJK characters are
// not special-cased). Malformed bytes count one each.
size_t DisplayWidth(std::string_view utf8);
// Cuts to at most `width` columns, ending in "…" when cut; never splits a code point.
std::string TruncateToWidth(std::string_view utf8, size_t width);

struct Column {
  std::string header;
  size_t max_width = 0;  // 0: as wide as the widest cell
  bool right = false;    // right-aligned (numbers)
};

// Header, then one line per row; columns separated by two spaces, no trailing spaces. Control
// characters in cells are shown as '?', so a hostile tag cannot move the cursor.
std::string FormatTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<std::string>>& rows);

// One line of a progress bar, exactly `width` columns or fewer:
//   "label  [#######.............]  35%  3.5 MB / 10.0 MB  4.2 MB/s"
// When `total` is 0 the size is unknown and there is no bar or percentage.
std::string FormatProgress(std::string_view label, uint64_t done, uint64_t total, double seconds,
                           size_t width);

struct SongRow {
  std::string file_id;
  std::string title;
  std::string artist;
  std::string album;
  uint64_t duration_ms = 0;
  uint64_t size_bytes = 0;
  std::string sha256;    // of the content; names it in a content-addressed stream
  std::string album_id;  // "" from a node that has no albums
};

// FILE_ID, TITLE, ARTIST, ALBUM, DURATION.
std::string FormatSongTable(const std::vector<SongRow>& songs);

struct MemberRow {
  uint64_t node_id = 0;
  std::string address;
  std::string role;  // leader, voter, learner
  bool healthy = false;
  uint64_t match_index = 0;
  int64_t files = -1;  // -1: not reported
};

struct ClusterStatusView {
  uint64_t node_id = 0;  // the node that answered
  std::string role;
  uint64_t term = 0;
  uint64_t leader_id = 0;
  std::string leader_address;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t replication_factor = 0;
  std::vector<MemberRow> members;
  int64_t songs = -1;  // -1: not reported
  int64_t bytes = -1;
  int64_t under_replicated = -1;  // only the leader knows; -1: not known
  int64_t unavailable = -1;
};

// A few "key: value" lines, a blank line, then the member table.
std::string FormatClusterStatus(const ClusterStatusView& s);

}  // namespace dispotify::cli
