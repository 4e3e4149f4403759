#include "node/api/http/content_type.h"

#include <array>
#include <utility>

#include "node/api/http/request.h"

namespace dispotify::api::http {

namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kAudioTypes = {{
    {"mp3", "audio/mpeg"},
    {"mpga", "audio/mpeg"},
    {"flac", "audio/flac"},
    {"ogg", "audio/ogg"},
    {"oga", "audio/ogg"},
    {"opus", "audio/ogg"},  // Ogg Opus files (RFC 7845 §9)
    {"spx", "audio/ogg"},
    {"m4a", "audio/mp4"},
    {"m4b", "audio/mp4"},
    {"mp4", "audio/mp4"},
    {"aac", "audio/aac"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "audio/webm"},
    {"aif", "audio/aiff"},
    {"aiff", "audio/aiff"},
    {"wma", "audio/x-ms-wma"},
}};

// Album pictures uploaded beside the songs (the formats the tagger decodes).
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kPictureTypes = {{
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"png", "image/png"},
    {"webp", "image/webp"},
}};

template <size_t N>
std::string_view FindIn(const std::array<std::pair<std::string_view, std::string_view>, N>& types,
                        std::string_view extension) {
  if (!extension.empty() && extension.front() == '.') extension.remove_prefix(1);
  for (const auto& [ext, type] : types) {
    if (EqualsIgnoreCase(ext, extension)) return type;
  }
  return {};
}

std::string_view Find(std::string_view extension) {
  std::string_view type = FindIn(kAudioTypes, extension);
  return type.empty() ? FindIn(kPictureTypes, extension) : type;
}

}  // namespace

std::string_view ContentTypeForExtension(std::string_view extension) {
  std::string_view type = Find(extension);
  return type.empty() ? kOctetStream : type;
}

std::string_view ContentTypeForFileName(std::string_view file_name) {
  size_t slash = file_name.find_last_of('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  size_t dot = file_name.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return kOctetStream;
  return ContentTypeForExtension(file_name.substr(dot + 1));
}

bool IsAudioExtension(std::string_view extension) {
  return !FindIn(kAudioTypes, extension).empty();
}

}  // namespace dispotify::api::http
