#include "cli/dispotifyctl/download_target.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dispotify::cli {
namespace {

Status WriteAll(int fd, const char* data, size_t n, const std::string& what) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) return Status::IoError(what + " was closed by the reader");
      return Status::FromErrno(errno, "writing " + what);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

FileTarget::FileTarget(std::string path, bool resume) : path_(std::move(path)) {
  struct stat st {};
  if (resume && ::stat(path_.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    size_ = static_cast<uint64_t>(st.st_size);
}

FileTarget::~FileTarget() {
  if (fd_ >= 0) ::close(fd_);
}

Result<uint64_t> FileTarget::Begin(uint64_t from) {
  if (from > size_)
    return Status::InvalidArgument("the server answered from byte " + std::to_string(from) + " but " + path_ +
                                   " holds " + std::to_string(size_));
  if (fd_ < 0) {
    // O_APPEND: every write lands at the end, whatever ftruncate did before it.
    const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (from == 0 ? O_CREAT : 0);
    fd_ = ::open(path_.c_str(), flags, 0644);
    if (fd_ < 0) return Status::FromErrno(errno, "opening " + path_);
  }
  struct stat st {};
  const bool regular = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
  if (regular && (from < size_ || from == 0)) {
    if (::ftruncate(fd_, static_cast<off_t>(from)) != 0)
      return Status::FromErrno(errno, "truncating " + path_);
  }
  size_ = from;
  return uint64_t{0};
}

Status FileTarget::Write(const char* data, size_t n) {
  if (fd_ < 0) return Status::FailedPrecondition("FileTarget::Write before Begin");
  DISPOTIFY_RETURN_IF_ERROR(WriteAll(fd_, data, n, path_));
  size_ += n;
  return Status::Ok();
}

Status FileTarget::Finish() {
  if (fd_ < 0) return Status::Ok();
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0 && errno != EINVAL) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "flushing " + path_);
  }
  if (::close(fd) != 0) return Status::FromErrno(errno, "closing " + path_);
  return Status::Ok();
}

Result<uint64_t> StreamTarget::Begin(uint64_t from) {
  if (from > size_)
    return Status::InvalidArgument("the server answered from byte " + std::to_string(from) + " but only " +
                                   std::to_string(size_) + " were written");
  return size_ - from;  // already written and cannot be taken back: drop them from this answer
}

Status StreamTarget::Write(const char* data, size_t n) {
  DISPOTIFY_RETURN_IF_ERROR(WriteAll(fd_, data, n, fd_ == 1 ? std::string("stdout") : "the output"));
  size_ += n;
  return Status::Ok();
}

}  // namespace dispotify::cli
