#include "common/tls/publish.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string_view>

namespace dispotify::tls {
namespace {

constexpr std::string_view kGenPrefix = "gen-";

Status WriteWhole(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "create " + path);
  Status s;
  if (::fchmod(fd, mode) != 0) s = Status::FromErrno(errno, "chmod " + path);
  size_t done = 0;
  while (s.ok() && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Status::FromErrno(errno, "write " + path);
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno(errno, "fsync " + path);
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno(errno, "close " + path);
  return s;
}

}  // namespace

PublishedPaths PublishedFiles(const std::string& dir) {
  return {dir + "/current/tls.crt", dir + "/current/tls.key", dir + "/current/ca.crt"};
}

Status PublishBundle(const CredentialBundle& bundle, const std::string& dir) {
  if (bundle.generation == 0) return Status::InvalidArgument("a bundle without a generation");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec) && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  // Generations restart at 1 with the process, so the name also carries the time: a directory that
  // `current` may still name is never rewritten in place.
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  const std::string gen_name =
      std::string(kGenPrefix) + std::to_string(bundle.generation) + "-" + std::to_string(stamp);
  const std::string gen_dir = dir + "/" + gen_name;
  if (::mkdir(gen_dir.c_str(), 0700) != 0) return Status::FromErrno(errno, "mkdir " + gen_dir);
  DISPOTIFY_RETURN_IF_ERROR(WriteWhole(gen_dir + "/tls.key", bundle.key_pem, 0600));
  DISPOTIFY_RETURN_IF_ERROR(WriteWhole(gen_dir + "/tls.crt", bundle.cert_pem, 0644));
  DISPOTIFY_RETURN_IF_ERROR(WriteWhole(gen_dir + "/ca.crt", bundle.ca_pem, 0644));

  const std::string link = dir + "/current";
  const std::string previous = std::filesystem::read_symlink(link, ec).string();
  const std::string link_tmp = dir + "/current.tmp";
  ::unlink(link_tmp.c_str());
  if (::symlink(gen_name.c_str(), link_tmp.c_str()) != 0)
    return Status::FromErrno(errno, "symlink " + link_tmp);
  if (::rename(link_tmp.c_str(), link.c_str()) != 0) return Status::FromErrno(errno, "rename " + link_tmp);

  // Cleanup failures only leave old files behind; the new generation is already published.
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(kGenPrefix) && name != gen_name && name != previous) {
      std::filesystem::remove_all(entry.path(), ec);
    }
  }
  return Status::Ok();
}

}  // namespace dispotify::tls
