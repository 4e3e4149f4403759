#include "cli/dispotifyctl/format.h"

#include <algorithm>
#include <cstdio>

namespace dispotify::cli {
namespace {

// The length of the UTF-8 sequence at s[i], or 1 when it is malformed.
size_t SequenceLength(std::string_view s, size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  size_t len = 1;
  if (lead >= 0xF0 && lead <= 0xF4)
    len = 4;
  else if (lead >= 0xE0)
    len = lead <= 0xEF ? 3 : 1;
  else if (lead >= 0xC2)
    len = 2;
  if (i + len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return len;
}

std::string Sanitize(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = '?';
  }
  return out;
}

std::string Pad(const std::string& cell, size_t width, bool right) {
  const size_t w = DisplayWidth(cell);
  if (w >= width) return cell;
  const std::string fill(width - w, ' ');
  return right ? fill + cell : cell + fill;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string FormatDuration(uint64_t ms) {
  if (ms == 0) return "--:--";
  const uint64_t total = ms / 1000;
  const uint64_t h = total / 3600;
  const uint64_t m = (total / 60) % 60;
  const uint64_t s = total % 60;
  char buf[48];
  if (h > 0) {
    std::snprintf(buf, sizeof(buf), "%llu:%02llu:%02llu", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(m), static_cast<unsigned long long>(s));
  } else {
    std::snprintf(buf, sizeof(buf), "%02llu:%02llu", static_cast<unsigned long long>(m),
                  static_cast<unsigned long long>(s));
  }
  return buf;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  if (bytes < 1000) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 999.95 && unit + 1 < std::size(kUnits)) {
    v /= 1000;
    ++unit;
  }
  return Fixed(v, 1) + " " + kUnits[unit];
}

std::string FormatRate(uint64_t bytes, double seconds) {
  if (seconds <= 0) return "-";
  const double per_second = static_cast<double>(bytes) / seconds;
  return FormatBytes(static_cast<uint64_t>(per_second)) + "/s";
}

std::string FormatSeconds(double seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return Fixed(seconds, 1) + " s";
  const auto total = static_cast<uint64_t>(seconds);
  const uint64_t h = total / 3600;
  const uint64_t m = (total / 60) % 60;
  const uint64_t s = total % 60;
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  out += std::to_string(m) + "m" + std::to_string(s) + "s";
  return out;
}

size_t DisplayWidth(std::string_view utf8) {
  size_t width = 0;
  for (size_t i = 0; i < utf8.size(); i += SequenceLength(utf8, i)) ++width;
  return width;
}

std::string TruncateToWidth(std::string_view utf8, size_t width) {
  if (DisplayWidth(utf8) <= width) return std::string(utf8);
  if (width == 0) return "";
  size_t i = 0;
  for (size_t col = 0; col + 1 < width && i < utf8.size(); ++col) i += SequenceLength(utf8, i);
  return std::string(utf8.substr(0, i)) + "\u2026";
}

std::string FormatTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size() + 1);
  std::vector<std::string> header;
  header.reserve(columns.size());
  for (const auto& c : columns) header.push_back(c.header);
  cells.push_back(std::move(header));
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string cell = i < row.size() ? Sanitize(row[i]) : "";
      if (columns[i].max_width > 0) cell = TruncateToWidth(cell, columns[i].max_width);
      line.push_back(std::move(cell));
    }
    cells.push_back(std::move(line));
  }
  std::vector<size_t> widths(columns.size(), 0);
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(line[i]));
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      if (i > 0) text += "  ";
      text += Pad(line[i], widths[i], columns[i].right);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  }
  return out;
}

std::string FormatProgress(std::string_view label, uint64_t done, uint64_t total, double seconds,
                           size_t width) {
  std::string tail;
  int percent = -1;
  if (total > 0) {
    percent = static_cast<int>(std::min<uint64_t>(100, done * 100 / total));
    std::string pct = std::to_string(percent) + "%";
    tail = "  " + std::string(4 - std::min<size_t>(4, pct.size()), ' ') + pct + "  " + FormatBytes(done) +
           " / " + FormatBytes(total);
  } else {
    tail = "  " + FormatBytes(done);
  }
  tail += "  " + FormatRate(done, seconds);

  // The bar's width comes from the widest tail this transfer can have, so that it holds still.
  const size_t tail_width = std::max(
      DisplayWidth(tail), total > 0 ? 2 + 4 + 2 + 2 * DisplayWidth(FormatBytes(total)) + 3 + 2 + 11 : 0);
  const size_t kMaxLabel = 32;
  const size_t kMinBar = 10;
  const size_t kMaxBar = 30;
  std::string name = TruncateToWidth(Sanitize(label), kMaxLabel);
  size_t room = width > tail_width ? width - tail_width : 0;
  std::string bar;
  if (percent >= 0 && room >= DisplayWidth(name) + 2 + kMinBar + 2) {
    const size_t bar_width = std::min(kMaxBar, room - DisplayWidth(name) - 4);
    const size_t filled = bar_width * static_cast<size_t>(percent) / 100;
    bar = "  [" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
  }
  std::string line = name + bar + tail;
  if (DisplayWidth(line) > width) line = TruncateToWidth(line, width);
  return line;
}

std::string FormatSongTable(const std::vector<SongRow>& songs) {
  const std::vector<Column> columns = {
      {"FILE_ID", 40}, {"TITLE", 40}, {"ARTIST", 28}, {"ALBUM", 28}, {"DURATION", 0, true}};
  std::vector<std::vector<std::string>> rows;
  rows.reserve(songs.size());
  for (const auto& s : songs)
    rows.push_back({s.file_id, s.title, s.artist, s.album, FormatDuration(s.duration_ms)});
  return FormatTable(columns, rows);
}

std::string FormatClusterStatus(const ClusterStatusView& s) {
  auto known = [](int64_t v) { return v < 0 ? std::string("?") : std::to_string(v); };
  std::string out;
  out += "leader:       ";
  if (s.leader_id == 0) {
    out += "none known";
  } else {
    out += "node " + std::to_string(s.leader_id);
    if (!s.leader_address.empty()) out += " (" + s.leader_address + ")";
  }
  out += "\nterm:         " + std::to_string(s.term);
  out += "\ncommit/apply: " + std::to_string(s.commit_index) + " / " + std::to_string(s.applied_index);
  out += "  (as seen by node " + std::to_string(s.node_id) + ", " + s.role + ")";
  out += "\nreplication:  R=" + std::to_string(s.replication_factor);
  out += "\nsongs:        " + known(s.songs);
  if (s.bytes >= 0) out += " (" + FormatBytes(static_cast<uint64_t>(s.bytes)) + ")";
  out += "\nunder-replicated: ";
  if (s.under_replicated < 0) {
    out += "? (only the leader reports it)";
  } else {
    out += std::to_string(s.under_replicated);
    if (s.unavailable > 0) out += " (" + std::to_string(s.unavailable) + " with no healthy copy)";
  }
  out += "\n\n";
  const std::vector<Column> columns = {{"ID", 0, true}, {"ADDRESS"},        {"ROLE"},
                                       {"HEALTHY"},     {"MATCH", 0, true}, {"FILES", 0, true}};
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : s.members) {
    rows.push_back({std::to_string(m.node_id), m.address, m.role, m.healthy ? "yes" : "NO",
                    std::to_string(m.match_index), m.files < 0 ? "-" : std::to_string(m.files)});
  }
  out += FormatTable(columns, rows);
  return out;
}

}  // namespace dispotify::cli
