#pragma once
// The embedded cover picture of an audio file, for dispotify-tagger only (it links TagLib, libvips
// and libcrypto, none of which may touch an untrusted file inside the node).
//
// Only JPEG, PNG and WebP pictures count, recognised by their magic bytes (the tag's MIME field is
// whatever the file's author wrote), and only up to kMaxPictureBytes: anything else is reported as
// "no picture", so that the tags' cover_sha256 is empty exactly when --cover finds nothing to
// render.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace TagLib {
class File;
}

namespace dispotify::api::tags {

// Larger pictures are ignored: a cover of that size is an attack or a mistake, not artwork.
inline constexpr size_t kMaxPictureBytes = size_t{16} << 20;

// "image/jpeg", "image/png" or "image/webp" from the first bytes of `bytes`; "" for anything else.
std::string_view ImageTypeOf(std::string_view bytes);

struct Picture {
  std::string bytes;      // as stored in the file; empty: no usable picture
  std::string_view type;  // ImageTypeOf(bytes)
};

// The front cover (ID3v2 APIC type 3, FLAC / Xiph picture type 3, the first MP4 covr item) if the
// file has one, else its first picture; empty if that one is not JPEG, PNG or WebP or too large.
Picture ChoosePicture(TagLib::File& file);

// Lowercase hex of the SHA-256 of `bytes`; "" if libcrypto fails.
std::string Sha256Hex(std::string_view bytes);

// Decodes `image` (JPEG, PNG or WebP) with libvips, fits it into size x size without upscaling,
// and returns the JPEG. On failure returns "" and sets `error`. Call at most once per process: it
// initialises libvips with the hardening settings (untrusted loaders blocked, one thread, no
// operation cache).
std::string RenderJpeg(std::string_view image, int size, std::string& error);

}  // namespace dispotify::api::tags
