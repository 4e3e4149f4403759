#pragma once
// Where `dispotifyctl stream` writes a song: a file (resumable) or an already open descriptor
// such as stdout (append-only: bytes it already wrote are skipped if a server starts over).

#include <cstdint>
#include <string>

#include "common/rest/client.h"

namespace dispotify::cli {

// A file at `path`, created (or truncated) only when the first byte of the song is on its way, so
// an error answer leaves an existing file alone. With `resume`, an existing file's bytes count as
// held, and the download asks for the rest.
class FileTarget : public rest::DownloadTarget {
 public:
  FileTarget(std::string path, bool resume);
  ~FileTarget() override;
  FileTarget(const FileTarget&) = delete;
  FileTarget& operator=(const FileTarget&) = delete;

  uint64_t size() const override { return size_; }
  Result<uint64_t> Begin(uint64_t from) override;
  Status Write(const char* data, size_t n) override;
  // Flushes to disk and closes; false with the error when that fails.
  Status Finish();

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A descriptor that can only be appended to (a pipe, a terminal). Not owned.
class StreamTarget : public rest::DownloadTarget {
 public:
  explicit StreamTarget(int fd) : fd_(fd) {}
  uint64_t size() const override { return size_; }
  Result<uint64_t> Begin(uint64_t from) override;
  Status Write(const char* data, size_t n) override;

 private:
  int fd_;
  uint64_t size_ = 0;
};

}  // namespace dispotify::cli
