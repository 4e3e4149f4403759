// Append + Sync throughput of the segmented log, beside the raw cost of pwrite + fdatasync on the
// same disk (the floor any log pays per sync).
//
//   segmented_log_bench [dir] [entries] [entry_bytes]
// dir defaults to a fresh directory under $TMPDIR (or /tmp), removed at the end: put it on the
// disk you want to measure.

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_system.h"
#include "node/storage/segmented_log.h"

namespace {

using dispotify::DefaultFileSystem;
using dispotify::LogIndex;
using dispotify::Term;
using dispotify::consensus::Entry;
using dispotify::storage::SegmentedLog;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what, const dispotify::Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// `total` entries in batches of `batch`, one Sync per batch, in a fresh log under `dir`.
void RunLog(const std::string& dir, uint64_t total, uint64_t batch, size_t entry_bytes) {
  std::filesystem::remove_all(dir);
  auto log = SegmentedLog::Open(DefaultFileSystem(), dir);
  if (!log.ok()) Die("open", log.status());
  const std::string data(entry_bytes, 'x');
  std::vector<Entry> entries;
  const auto start = Clock::now();
  uint64_t syncs = 0;
  for (uint64_t next = 1; next <= total;) {
    entries.clear();
    for (uint64_t i = 0; i < batch && next <= total; ++i, ++next)
      entries.push_back(Entry{Term(1), LogIndex(next), {}, data});
    dispotify::Status s = (*log)->Append(entries);
    if (!s.ok()) Die("append", s);
    s = (*log)->Sync();
    if (!s.ok()) Die("sync", s);
    ++syncs;
  }
  const double secs = Seconds(start);
  std::printf(
      "log: %6llu x %zu B, %3llu entries per Sync: %8.3f s  %10.0f entries/s  %8.0f syncs/s  %6.1f us/sync\n",
      static_cast<unsigned long long>(total), entry_bytes, static_cast<unsigned long long>(batch), secs,
      static_cast<double>(total) / secs, static_cast<double>(syncs) / secs,
      secs * 1e6 / static_cast<double>(syncs));
}

// The floor: append `bytes` + fdatasync, `n` times, straight through the file system interface.
void RunRaw(const std::string& dir, uint64_t n, size_t bytes) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto f = DefaultFileSystem().Open(dir + "/raw", dispotify::OpenMode::kCreateTruncate);
  if (!f.ok()) Die("open", f.status());
  const std::string data(bytes, 'x');
  const auto start = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    dispotify::Status s = (*f)->Append(data);
    if (s.ok()) s = (*f)->Sync();
    if (!s.ok()) Die("raw", s);
  }
  const double secs = Seconds(start);
  std::printf(
      "raw: %6llu x append %zu B + fdatasync:      %8.3f s  %10.0f ops/s                  %6.1f us/sync\n",
      static_cast<unsigned long long>(n), bytes, secs, static_cast<double>(n) / secs,
      secs * 1e6 / static_cast<double>(n));
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool temp = false;
  if (argc > 1) {
    dir = argv[1];
  } else {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/dispotify-bench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
    temp = true;
  }
  const uint64_t total = argc > 2 ? std::stoull(argv[2]) : 10000;
  const size_t entry_bytes = argc > 3 ? std::stoul(argv[3]) : 256;
  std::printf("directory %s\n", dir.c_str());
  RunRaw(dir + "/raw", total, entry_bytes + dispotify::storage::segmented_log::kRecordHeaderSize);
  RunLog(dir + "/log1", total, 1, entry_bytes);
  RunLog(dir + "/log64", total * 8, 64, entry_bytes);
  if (temp) std::filesystem::remove_all(dir);
  return 0;
}
