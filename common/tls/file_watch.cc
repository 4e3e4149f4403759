#include "common/tls/file_watch.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace dispotify::tls {

namespace {
constexpr int64_t kMaxFileSize = 1 << 20;
}  // namespace

Result<FileStamp> StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  return FileStamp{static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                   static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino),
                   static_cast<uint64_t>(st.st_dev)};
}

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open " + path);
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Status::IoError("cannot read " + path);
  std::string data = std::move(out).str();
  if (static_cast<int64_t>(data.size()) > kMaxFileSize)
    return Status::InvalidArgument(path + " is too large");
  return data;
}

}  // namespace dispotify::tls
