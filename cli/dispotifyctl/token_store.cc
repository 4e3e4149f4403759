#include "cli/dispotifyctl/token_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace dispotify::cli {

std::string TokenFilePath(const std::string& token_file_env, const std::string& xdg_config_home,
                          const std::string& home) {
  if (!token_file_env.empty()) return token_file_env;
  if (!xdg_config_home.empty()) return xdg_config_home + "/dispotify/token";
  if (!home.empty()) return home + "/.config/dispotify/token";
  return "";
}

Result<std::optional<std::string>> LoadToken(const std::string& path) {
  if (path.empty()) return std::optional<std::string>();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::FromErrno(errno, "reading the stored token " + path);
  }
  if ((st.st_mode & 077) != 0) {
    return Status::FailedPrecondition("the stored token " + path + " may be read by others; run: chmod 600 " +
                                      path);
  }
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read the stored token " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) return std::optional<std::string>();
  return std::optional<std::string>(token);
}

Status StoreToken(const std::string& path, const std::string& token) {
  if (path.empty())
    return Status::FailedPrecondition("no place to store the token: set DISPOTIFY_TOKEN_FILE or HOME");
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    // Each missing directory of the path, owner-only (mkdir -p with mode 0700).
    for (size_t pos = path.find('/', 1); pos != std::string::npos && pos <= slash;
         pos = path.find('/', pos + 1)) {
      const std::string dir = path.substr(0, pos);
      if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Status::FromErrno(errno, "creating " + dir);
    }
  }
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "creating " + tmp);
  const std::string line = token + "\n";
  const bool ok =
      ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "writing " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno(rename_err, "renaming " + tmp);
  }
  return Status::Ok();
}

Status ForgetToken(const std::string& path) {
  if (path.empty() || ::unlink(path.c_str()) == 0 || errno == ENOENT) return Status::Ok();
  return Status::FromErrno(errno, "removing " + path);
}

}  // namespace dispotify::cli
