#pragma once
// The file-system operations durable storage needs, behind an interface so that tests can inject
// faults (failed writes, failed fsyncs, lost unsynced data, flipped bytes) the way tikv/raft-engine
// does. DefaultFileSystem() is the POSIX implementation; tests/mocks/fault_injecting_file_system.h
// wraps any FileSystem.
//
// Durability contract of the interface (what callers may rely on, and all they may rely on):
//  - data written to a File is durable only after File::Sync() returns OK;
//  - a file's directory entry (creation, rename, removal) is durable only after SyncDir() of its
//    parent directory returns OK;
//  - after a failed Sync() the file's unsynced data is in an unknown state (it may or may not be on
//    disk, and retrying Sync() does not tell): callers must treat the file as lost.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dispotify {

enum class OpenMode : uint8_t {
  kRead,            // read only; the file must exist
  kReadWrite,       // read and write; the file must exist
  kCreate,          // read and write; created if missing, contents kept
  kCreateTruncate,  // read and write; created if missing, truncated to empty
};

// An open file. Append writes at the handle's end position (the size at open, moved by Append,
// PWrite past it and Truncate). Writes through one handle must not race with each other; PRead may
// run concurrently with anything.
class File {
 public:
  virtual ~File() = default;
  // Writes all of `data` at the end position. On error a prefix of `data` may have been written.
  virtual Status Append(std::string_view data) = 0;
  // Writes all of `data` at `offset`. On error a prefix of `data` may have been written.
  virtual Status PWrite(uint64_t offset, std::string_view data) = 0;
  // Reads up to `n` bytes at `offset` into `buf`; fewer only when the end of the file is reached.
  virtual Result<size_t> PRead(uint64_t offset, size_t n, char* buf) const = 0;
  // fdatasync(2): the data and the metadata needed to read it back (the size) reach the disk.
  virtual Status Sync() = 0;
  virtual Status Truncate(uint64_t size) = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual const std::string& path() const = 0;
};

// Space on the file system that holds a path (statvfs(2)).
struct FileSystemSpace {
  uint64_t free_bytes = 0;   // available to an unprivileged writer (f_bavail)
  uint64_t total_bytes = 0;  // size of the file system
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  // Atomically replaces `to` (if it exists) with `from`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Removes a file or an empty directory.
  virtual Status Remove(const std::string& path) = 0;
  // Names of the entries of `dir` (without "." and ".."), sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // mkdir -p.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // fsync(2) of the directory itself: makes creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // True for a directory; false for anything else, including a symbolic link to a directory.
  virtual bool IsDirectory(const std::string& path) = 0;
  virtual Result<FileSystemSpace> Space(const std::string& path) = 0;
};

// The process-wide POSIX file system (O_CLOEXEC everywhere, EINTR retried, errno mapped through
// Status::FromErrno so that ENOSPC becomes kNoSpace).
FileSystem& DefaultFileSystem();

// --- Helpers built on the interface -------------------------------------------------------------

std::string JoinPath(std::string_view dir, std::string_view name);
// The parent directory of `path` ("." when it has none).
std::string ParentDir(std::string_view path);

// The whole content of a (small) file.
Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path);

// Replaces `path` with `data` so that a crash leaves either the old or the new content, and the
// new content is durable when it returns: write `path`.tmp, Sync, rename over `path`, SyncDir.
Status WriteFileAtomically(FileSystem& fs, const std::string& path, std::string_view data);

}  // namespace dispotify
