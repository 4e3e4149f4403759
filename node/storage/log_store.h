#pragma once
// The durable Raft log: segmented files with a checksum per record.
// The on-disk format is documented in full in segmented_log.h (the implementation's header).

#include <memory>
#include <string>
#include <vector>

#include "common/file_system.h"
#include "common/status.h"
#include "node/consensus/types.h"

namespace dispotify::storage {

struct LogStoreOptions {
  uint64_t segment_bytes = 64ull << 20;  // a segment is closed and a new one opened past this size
};

class LogStore {
 public:
  virtual ~LogStore() = default;

  // First index held; when the log is empty, the index the next Append must start at.
  virtual LogIndex first_index() const = 0;
  // Last index held; first_index() - 1 when empty.
  virtual LogIndex last_index() const = 0;

  // Entries [from, to], both inclusive, within [first_index(), last_index()].
  virtual Result<std::vector<consensus::Entry>> Read(LogIndex from, LogIndex to) const = 0;
  // Appends contiguous entries. If entries[0].index <= last_index(), the suffix from that index
  // is truncated first. entries[0].index must be in [first_index(), last_index() + 1].
  // Not durable until Sync().
  virtual Status Append(const std::vector<consensus::Entry>& entries) = 0;
  // Makes every Append so far durable (fdatasync of the open segment, directory fsync when a
  // segment was created or removed).
  virtual Status Sync() = 0;
  // Entries <= upto are covered by a snapshot: they may be dropped (whole segments at a time).
  virtual Status CompactPrefix(LogIndex upto) = 0;
  // Drops everything (after installing a snapshot that conflicts with the log); the next Append
  // starts at next_index. Durable when it returns.
  virtual Status Reset(LogIndex next_index) = 0;
};

// Opens (creating if needed) the segmented log in `dir`. Recovery: a torn or corrupt record at the
// tail of the last segment is truncated away with a warning; corruption anywhere else (a closed
// segment, a gap) is reported as kCorruption and the node must not start.
Result<std::unique_ptr<LogStore>> OpenSegmentedLog(FileSystem& fs, const std::string& dir,
                                                   LogStoreOptions options = {});

}  // namespace dispotify::storage
