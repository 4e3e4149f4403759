#include "cli/dispotifyctl/files.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <set>
#include <system_error>

#include "common/file_id.h"

namespace dispotify::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 7> kAudioExtensions = {"mp3", "flac", "ogg", "opus",
                                                              "m4a", "wav",  "aac"};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Identity of a path for de-duplication: the canonical form when it resolves.
std::string Key(const fs::path& p) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal().string() : canonical.string();
}

// "Music" for "~/Music", "~/Music/" or "~/Music/."; "" for "/".
std::string OperandName(const fs::path& operand) {
  std::error_code ec;
  fs::path p = fs::absolute(operand, ec);
  if (ec) p = operand;
  p = p.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

bool IsAudioFileName(std::string_view file_name) {
  const size_t slash = file_name.find_last_of('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  const size_t dot = file_name.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  const std::string_view ext = file_name.substr(dot + 1);
  return std::any_of(kAudioExtensions.begin(), kAudioExtensions.end(),
                     [&](std::string_view e) { return EqualsIgnoreCase(e, ext); });
}

UploadPlan PlanUploads(const std::vector<std::string>& operands) {
  UploadPlan plan;
  std::set<std::string> seen;
  auto add = [&](const fs::path& p, std::string relative_path, uint64_t size) {
    if (!seen.insert(Key(p)).second) return;
    plan.files.push_back({p.string(), p.filename().string(), std::move(relative_path), size});
  };
  for (const auto& operand : operands) {
    const fs::path root(operand);
    std::error_code ec;
    const fs::file_status st = fs::status(root, ec);
    if (ec || !fs::exists(st)) {
      plan.problems.push_back({operand, "no such file or folder"});
      continue;
    }
    if (fs::is_regular_file(st)) {
      if (!IsAudioFileName(root.filename().string())) {
        plan.problems.push_back({operand, "not an audio file name (mp3 flac ogg opus m4a wav aac)"});
        continue;
      }
      const uint64_t size = fs::file_size(root, ec);
      if (ec) {
        plan.problems.push_back({operand, ec.message()});
        continue;
      }
      add(root, root.filename().string(), size);
      continue;
    }
    if (!fs::is_directory(st)) {
      plan.problems.push_back({operand, "not a regular file or a folder"});
      continue;
    }
    std::vector<std::pair<fs::path, uint64_t>> found;
    std::vector<std::pair<fs::path, uint64_t>> pictures;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (const fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
      const fs::directory_entry& entry = *it;
      std::error_code entry_ec;
      if (entry.is_regular_file(entry_ec)) {  // follows a symlink to a file
        const std::string file_name = entry.path().filename().string();
        const bool picture = IsAlbumPictureName(file_name);
        if (!picture && !IsAudioFileName(file_name)) {
          ++plan.skipped;
          continue;
        }
        const uint64_t size = entry.file_size(entry_ec);
        if (entry_ec)
          plan.problems.push_back({entry.path().string(), entry_ec.message()});
        else
          (picture ? pictures : found).emplace_back(entry.path(), size);
      } else if (!entry.is_directory(entry_ec) && !entry.is_symlink(entry_ec)) {
        ++plan.skipped;  // fifos, sockets, devices
      }
    }
    if (ec) plan.problems.push_back({operand, "walking the folder: " + ec.message()});
    std::sort(found.begin(), found.end());
    std::sort(pictures.begin(), pictures.end());
    found.insert(found.end(), pictures.begin(), pictures.end());
    const std::string name = OperandName(root);
    fs::path base = root.lexically_normal();  // "Music/." and "Music/" are "Music"
    if (base.filename().empty() && base.has_parent_path()) base = base.parent_path();
    for (const auto& [path, size] : found) {
      const std::string below = path.lexically_normal().lexically_relative(base).generic_string();
      add(path, name.empty() ? below : name + "/" + below, size);
    }
  }
  return plan;
}

Result<Sha256::Digest> HashFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "opening " + path);
  Sha256 sha;
  std::string buf(size_t{1} << 20, '\0');
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::FromErrno(errno, "reading " + path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return sha.Final();
}

}  // namespace dispotify::cli
