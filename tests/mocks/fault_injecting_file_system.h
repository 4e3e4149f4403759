#pragma once
// A FileSystem wrapper for tests (in the manner of tikv/raft-engine's fault injection): makes
// chosen operations fail, simulates a power failure, damages bytes on disk.
//
// Crash model (what Crash() does):
//  - every file goes back to the bytes made durable by its last successful File::Sync(): appended
//    bytes past that length are cut (optionally keeping the first `keep_unsynced_bytes` of them: a
//    torn write), and bytes overwritten inside it since then get their old content back;
//  - a file created since the last SyncDir() of its directory disappears (also when it was renamed
//    in the meantime, unless the rename replaced an existing file: then the new content stays);
//  - removals, truncations and renames over an existing file are durable at once (a real crash may
//    also undo them; the code under test fsyncs its directory where that matters);
//  - every File opened before the crash fails from then on (the process "died").
// Files that existed before the wrapper first saw them are assumed durable.

#include <cerrno>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/file_system.h"

namespace dispotify::mocks {

enum class FsOp : uint8_t { kOpen, kWrite, kSync, kTruncate, kRename, kRemove, kSyncDir };

struct Fault {
  FsOp op = FsOp::kWrite;
  uint64_t nth = 1;          // the nth matching operation from now fails (1: the next one)
  int err = EIO;             // the errno it fails with
  bool sticky = false;       // and every matching operation after it (e.g. a full disk)
  size_t partial_bytes = 0;  // kWrite: bytes written before failing (a short, torn write)
  std::string path_substr;   // only operations on a path containing this; empty: any path
};

class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem& base = DefaultFileSystem()) : base_(base) {}

  // --- FileSystem ---
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override { return base_.ListDir(dir); }
  Status CreateDirs(const std::string& dir) override { return base_.CreateDirs(dir); }
  Status SyncDir(const std::string& dir) override;
  Result<uint64_t> FileSize(const std::string& path) override { return base_.FileSize(path); }
  bool Exists(const std::string& path) override { return base_.Exists(path); }
  bool IsDirectory(const std::string& path) override { return base_.IsDirectory(path); }
  Result<FileSystemSpace> Space(const std::string& path) override {
    auto space = base_.Space(path);
    std::lock_guard<std::mutex> lock(mu_);
    if (space.ok() && free_bytes_) space->free_bytes = *free_bytes_;
    return space;
  }

  // --- Faults ---
  // Space() reports `free_bytes` free (a nearly full disk) until reset with std::nullopt.
  void SetFreeBytes(std::optional<uint64_t> free_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    free_bytes_ = free_bytes;
  }
  void Inject(Fault fault);
  void FailNthWrite(uint64_t nth, int err = ENOSPC, size_t partial_bytes = 0) {
    Inject(Fault{FsOp::kWrite, nth, err, false, partial_bytes, {}});
  }
  void FailNthSync(uint64_t nth, int err = EIO) { Inject(Fault{FsOp::kSync, nth, err, false, 0, {}}); }
  void ClearFaults();

  // Power failure (see the crash model above).
  Status Crash(uint64_t keep_unsynced_bytes = 0);
  // XORs the byte at `offset` of `path` with `mask`, on disk (it survives crashes).
  Status FlipByte(const std::string& path, uint64_t offset, uint8_t mask = 0x01);
  // Bytes of `path` that are durable (its whole size if the wrapper never wrote to it).
  uint64_t SyncedLength(const std::string& path);
  // Write calls (Append and PWrite) and Sync calls seen so far, failed ones included.
  uint64_t write_count() const;
  uint64_t sync_count() const;

 private:
  friend class FaultFile;
  struct Undo {
    uint64_t offset;
    std::string old_bytes;
  };
  struct FileState {
    uint64_t synced_len = 0;
    std::vector<Undo> undo;  // overwrites of durable bytes since the last sync
    bool unsynced_create = false;
  };
  struct Fired {
    int err = 0;
    size_t partial_bytes = 0;
  };

  // --- Must hold mu_. ---
  // The fault that the operation fails with, if any (consumes a count).
  bool MaybeFailLocked(FsOp op, const std::string& path, Fired* fired);
  std::shared_ptr<FileState> StateLocked(const std::string& path);

  FileSystem& base_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_;
  std::vector<Fault> faults_;
  std::vector<bool> fault_fired_;
  uint64_t generation_ = 0;  // bumped by Crash; older handles are dead
  uint64_t writes_ = 0;
  uint64_t syncs_ = 0;
  std::optional<uint64_t> free_bytes_;
};

}  // namespace dispotify::mocks
