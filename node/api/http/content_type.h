#pragma once
// Media types for audio files, by file extension (IANA registrations where they exist; what
// browsers' <audio> elements accept otherwise), and for the album pictures uploaded beside them
// (jpg/jpeg, png, webp).

#include <string_view>

namespace dispotify::api::http {

inline constexpr std::string_view kOctetStream = "application/octet-stream";

// "mp3", ".MP3" -> "audio/mpeg", "jpg" -> "image/jpeg"; an unknown extension -> kOctetStream.
std::string_view ContentTypeForExtension(std::string_view extension);

// By the extension of a file name ("Song.flac" -> "audio/flac"); kOctetStream without one.
std::string_view ContentTypeForFileName(std::string_view file_name);

// Whether `extension` is one of the audio formats above.
bool IsAudioExtension(std::string_view extension);

}  // namespace dispotify::api::http
