#include "common/file_id.h"

#include <string>
#include <vector>

#include "common/sha256.h"

namespace dispotify {
namespace {

constexpr size_t kHashDigits = 16;
constexpr size_t kMaxExtensionSize = 10;  // ".flac", ".opus", with room for longer ones

bool IsIdChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// Step 2 of the rule in the header.
std::string Slug(std::string_view component) {
  std::string out;
  for (char c : component) {
    const char mapped = IsIdChar(c) ? c : '-';
    if (out.empty() && (mapped == '-' || mapped == '.')) continue;
    if (mapped == '-' && out.back() == '-') continue;
    out.push_back(mapped);
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

// Step 4's extension: ".mp3" of "01-Intro.mp3"; "" when there is none worth keeping.
std::string_view Extension(std::string_view slug) {
  const size_t dot = slug.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  const std::string_view ext = slug.substr(dot);
  if (ext.size() < 2 || ext.size() > kMaxExtensionSize) return {};
  return ext;
}

}  // namespace

bool IsValidFileId(std::string_view id) {
  if (id.empty() || id.size() > kMaxFileIdSize || id == "." || id == "..") return false;
  for (char c : id) {
    if (!IsIdChar(c)) return false;
  }
  return true;
}

std::string FileIdFromPath(std::string_view relative_path) {
  std::vector<std::string_view> components;
  while (true) {
    const size_t sep = relative_path.find_first_of("/\\");
    const std::string_view c = relative_path.substr(0, sep);
    if (!c.empty() && c != "." && c != "..") components.push_back(c);
    if (sep == std::string_view::npos) break;
    relative_path.remove_prefix(sep + 1);
  }
  std::string id;
  std::string last;
  for (std::string_view c : components) {
    std::string slug = Slug(c);
    if (slug.empty()) continue;
    if (!id.empty()) id.push_back('_');
    id += slug;
    last = std::move(slug);
  }
  if (id.size() <= kMaxFileIdSize) return IsValidFileId(id) ? id : std::string();

  std::string normalised;
  for (std::string_view c : components) {
    if (!normalised.empty()) normalised.push_back('/');
    normalised += c;
  }
  const std::string hash = Sha256Hex(normalised).substr(0, kHashDigits);
  const std::string_view ext = Extension(last);
  std::string out = id.substr(0, kMaxFileIdSize - 1 - kHashDigits - ext.size());
  while (!out.empty() && (out.back() == '-' || out.back() == '_' || out.back() == '.')) out.pop_back();
  out += '-';
  out += hash;
  out += ext;
  return out;
}

bool IsAlbumPictureName(std::string_view file_name) {
  const size_t slash = file_name.find_last_of("/\\");
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  const size_t dot = file_name.find_last_of('.');
  if (dot == std::string_view::npos) return false;
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return out;
  };
  const std::string stem = lower(file_name.substr(0, dot));
  const std::string ext = lower(file_name.substr(dot + 1));
  return (stem == "cover" || stem == "folder" || stem == "front") &&
         (ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "webp");
}

}  // namespace dispotify
