#pragma once
// SegmentedLog: the LogStore on disk, after LogCabin's Storage/SegmentedLog and tikv/raft-engine.
//
// ON-DISK FORMAT (version 1)
//
// Files in the log directory:
//   log-<first index, 20 digits>.seg      a segment; names sort by index
//   log-<first index, 20 digits>.seg.tmp  a segment being created; deleted when the log is opened
// Anything else is ignored.
//
// The segments hold consecutive entries: a segment starts at the index that follows the last entry
// of the segment before it. Only the last segment (the open one) is written to; the others are
// closed: complete and synced (a segment is fdatasync'ed before the next one is created). A segment
// may be empty (header only) only if it is the last one: that is how the log remembers where the
// next entry goes when it holds none (a fresh directory, after Reset).
//
// Segment file = header, then records back to back (no padding). Integers are little-endian.
//   header, 32 bytes:
//     magic        8 bytes  "DSPFYLOG"
//     version      u32      1
//     first_index  u64      index of the segment's first record; equals the number in the name
//     generation   u64      bumped by every Reset (see below)
//     header_crc   u32      CRC-32C of the 28 bytes before it
//   record, 25 bytes + data:
//     length       u32      number of data bytes
//     crc          u32      CRC-32C of everything after it in the record (term .. data)
//     term         u64
//     index        u64      first_index + position of the record in the segment
//     type         u8       consensus::EntryType (0 normal, 1 no-op, 2 conf change)
//     data         `length` bytes
//
// WRITES
//  - Append: the records of a whole batch are encoded into one buffer and written with one pwrite
//    at the end of the open segment (no per-entry system calls). Before a batch, if the open
//    segment holds at least segment_bytes and one record, it is rolled over: fdatasync it, write the
//    next segment's header to log-N.seg.tmp, fdatasync, rename to log-N.seg (the directory is
//    fsynced by the next Sync). A batch never spans two segments.
//  - Sync: fdatasync of the open segment, then fsync of the directory if segments were created
//    since the last Sync.
//  - Append at an index <= last_index() truncates the suffix first: the later segments are removed
//    newest first, fsyncing the directory after each removal (a crash leaves contiguous segments);
//    the segment holding the new tail is truncated and fdatasync'ed before anything is written over
//    the old records (so old and new records never mix after a crash).
//  - CompactPrefix removes closed segments whose entries are all <= upto, oldest first, fsyncing
//    the directory after each removal. The open segment is never removed.
//  - Reset(next): a new empty segment at `next` with generation + 1 is created (tmp, fdatasync,
//    rename, directory fsync: that rename is the commit point), then the old segments are removed.
//
// RECOVERY (Open)
//  - Temp files are deleted. Segments of a generation lower than the highest one are left-overs of
//    an interrupted Reset: they are deleted.
//  - Every record of every segment is read and checked: the length fits in the file, the CRC
//    matches, the index is the expected one, the term does not decrease, the type is known.
//  - In the last segment, the first bad record and everything after it are the torn tail of a write
//    that was never synced: they are truncated away with a warning.
//  - Anything else is kCorruption and the node must not start: a bad record in a closed segment, a
//    bad or short header, a header that disagrees with the file name, a gap or an overlap between
//    segments. A corrupt entry is never served: Read checks every record's CRC again.
//
// Limitation (shared with LogCabin and raft-engine's default recovery mode): a record damaged in
// place (bit rot) inside the last segment cannot be told apart from a torn write, so it and the
// records after it are truncated too, with a warning that says how many bytes were dropped.

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_system.h"
#include "common/status.h"
#include "node/consensus/types.h"
#include "node/storage/log_store.h"

namespace dispotify::storage {

namespace segmented_log {
inline constexpr char kMagic[8] = {'D', 'S', 'P', 'F', 'Y', 'L', 'O', 'G'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 32;
inline constexpr size_t kRecordHeaderSize = 25;

// "log-<first, 20 digits>.seg".
std::string SegmentFileName(LogIndex first);
// True (and *first set) when `name` is a segment file name.
bool ParseSegmentFileName(std::string_view name, LogIndex* first);
}  // namespace segmented_log

// Thread-safe: every method takes one mutex (Sync holds it during the fdatasync).
// After a failed write or sync the log is unusable: every later call returns that error (the
// in-memory state never claims entries that were not written); reopen it to recover.
class SegmentedLog final : public LogStore {
 public:
  static Result<std::unique_ptr<SegmentedLog>> Open(FileSystem& fs, const std::string& dir,
                                                    LogStoreOptions options = {});
  ~SegmentedLog() override = default;
  SegmentedLog(const SegmentedLog&) = delete;
  SegmentedLog& operator=(const SegmentedLog&) = delete;

  LogIndex first_index() const override;
  LogIndex last_index() const override;
  Result<std::vector<consensus::Entry>> Read(LogIndex from, LogIndex to) const override;
  Status Append(const std::vector<consensus::Entry>& entries) override;
  Status Sync() override;
  Status CompactPrefix(LogIndex upto) override;
  Status Reset(LogIndex next_index) override;

  // Aborts if the in-memory index is inconsistent (called from test fixtures).
  void CheckInvariants() const;
  size_t segment_count() const;

 private:
  struct Segment {
    LogIndex first;
    std::string path;
    std::unique_ptr<File> file;
    std::vector<uint64_t> offsets;  // offsets[i]: start of the record of index first + i
    uint64_t size = 0;              // bytes of header and valid records

    uint64_t count() const { return offsets.size(); }
    LogIndex last() const { return LogIndex(first.value() + count() - 1); }  // first - 1 if empty
    uint64_t record_end(size_t i) const { return i + 1 < offsets.size() ? offsets[i + 1] : size; }
  };

  SegmentedLog(FileSystem& fs, std::string dir, LogStoreOptions options);

  // --- Called only from Open (no other thread can see the object yet). ---
  Status Recover();
  // Reads and checks every record of `seg`; in the last segment, cuts a bad tail.
  Status ScanSegment(Segment* seg, bool is_last, Term* prev_term);

  // --- Must hold mu_. ---
  LogIndex FirstIndexLocked() const { return segments_.front().first; }
  LogIndex LastIndexLocked() const { return segments_.back().last(); }
  // Creates an empty segment (tmp, header, fdatasync, rename); the directory is not fsynced.
  Result<Segment> CreateSegmentLocked(LogIndex first, uint64_t generation);
  Status RollOverLocked();
  Status TruncateSuffixLocked(LogIndex from);
  Result<Term> ReadTermLocked(LogIndex index) const;
  Status ReadRangeLocked(const Segment& seg, LogIndex from, LogIndex to,
                         std::vector<consensus::Entry>* out) const;
  // Records `s` as the reason the log is unusable and returns it.
  Status Fail(Status s);

  FileSystem& fs_;
  const std::string dir_;
  const LogStoreOptions options_;

  mutable std::mutex mu_;
  std::deque<Segment> segments_;  // never empty once open; the last one is the open segment
  uint64_t generation_ = 0;
  Term last_term_;           // term of the last entry; 0 when unknown (empty log)
  bool data_dirty_ = false;  // appended since the last Sync
  bool dir_dirty_ = false;   // segments created since the last directory fsync
  Status broken_;            // not OK: a write failed, the log refuses everything
};

}  // namespace dispotify::storage
