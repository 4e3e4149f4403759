#pragma once
// A temp file in a spool directory, deleted (and closed) on destruction: where an upload waits
// while its tags are read, and where a song's bytes wait while its cover is rendered. Both hand
// the path to the sandboxed tagger (node/api/tags/), which reads it by name.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "common/status.h"

namespace dispotify::api {

class SpoolFile {
 public:
  // `prefix`: the file name's start, so that a leftover file says what made it.
  static Result<std::unique_ptr<SpoolFile>> Create(const std::string& dir,
                                                   const std::string& prefix = "upload") {
    std::string path = dir + "/" + prefix + "-XXXXXX";
    int fd = ::mkstemp(path.data());
    if (fd < 0) return Status::FromErrno(errno, "creating a spool file in " + dir);
    return std::unique_ptr<SpoolFile>(new SpoolFile(fd, std::move(path)));
  }
  ~SpoolFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  SpoolFile(const SpoolFile&) = delete;
  SpoolFile& operator=(const SpoolFile&) = delete;
  Status Write(const char* data, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, data, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "writing the spool file " + path_);
      }
      data += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  const std::string& path() const { return path_; }

 private:
  SpoolFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace dispotify::api
