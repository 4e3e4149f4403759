#pragma once
// Snapshots on disk: the state machine writes one through a SnapshotWriter; a follower receives
// one from the leader in chunks; the leader reads chunks to send. Only complete, verified
// snapshots are ever visible (temp file -> fsync -> rename -> fsync dir).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/file_system.h"
#include "common/status.h"
#include "node/consensus/state_machine.h"
#include "node/consensus/types.h"

namespace dispotify::storage {

class SnapshotWriter : public consensus::SnapshotSink {
 public:
  // Destruction abandons (deletes) the temp file unless committed.
  Status Write(std::string_view data) override = 0;
  // Makes the snapshot durable and the latest one; older snapshots are deleted.
  virtual Status Commit() = 0;
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;

  // Metadata of the newest complete snapshot, if any.
  virtual std::optional<consensus::SnapshotMeta> Latest() const = 0;

  // A snapshot produced locally by the state machine.
  virtual Result<std::unique_ptr<SnapshotWriter>> Create(const consensus::SnapshotMeta& meta) = 0;

  // A snapshot received from the leader, chunk by chunk, in order: offset 0 starts a new one
  // (discarding any partial one); `done` verifies and commits it.
  virtual Status WriteChunk(const consensus::SnapshotMeta& meta, uint64_t offset, std::string_view data,
                            bool done) = 0;

  // Size in bytes of the payload of the latest snapshot.
  virtual Result<uint64_t> PayloadSize(LogIndex index) const = 0;
  // Up to max_bytes of the payload of the snapshot at `index` (the latest), from `offset`.
  virtual Result<std::string> ReadChunk(LogIndex index, uint64_t offset, uint64_t max_bytes) const = 0;
  // Path of the payload of the latest snapshot, for the state machine to restore from.
  virtual Result<std::string> PayloadPath(LogIndex index) const = 0;
};

Result<std::unique_ptr<SnapshotStore>> OpenSnapshotStore(FileSystem& fs, const std::string& dir);

}  // namespace dispotify::storage
