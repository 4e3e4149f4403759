#pragma once
// The pixel size a JPEG declares in its frame header (SOF0..SOF15 but DHT, JPG and DAC), for
// tests of thumbnails: enough to tell a 64x48 thumbnail from its 400x300 source without a decoder.

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace dispotify::testing_jpeg {

// {width, height}, or nullopt when `jpeg` does not start with SOI or has no frame header.
inline std::optional<std::pair<int, int>> JpegSize(std::string_view jpeg) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(jpeg[i]); };
  if (jpeg.size() < 4 || byte(0) != 0xFF || byte(1) != 0xD8) return std::nullopt;
  size_t i = 2;
  while (i + 4 <= jpeg.size()) {
    if (byte(i) != 0xFF) return std::nullopt;
    const uint8_t marker = byte(i + 1);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // TEM and RSTn have no length
      i += 2;
      continue;
    }
    const size_t length = (size_t{byte(i + 2)} << 8) | byte(i + 3);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > jpeg.size()) return std::nullopt;
      const int height = (byte(i + 5) << 8) | byte(i + 6);
      const int width = (byte(i + 7) << 8) | byte(i + 8);
      return std::make_pair(width, height);
    }
    if (marker == 0xDA || length < 2) return std::nullopt;  // scan data before any frame header
    i += 2 + length;
  }
  return std::nullopt;
}

}  // namespace dispotify::testing_jpeg
