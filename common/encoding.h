#pragma once
// Fixed-width little-endian encoding of the integers in on-disk and log-entry formats.

#include <cstdint>
#include <string>
#include <string_view>

namespace dispotify::encoding {

inline void PutU8(std::string* out, uint8_t v) {
  out->push_back(static_cast<char>(v));
}

inline void PutU32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  out->append(b, 4);
}

inline void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  out->append(b, 8);
}

// A length-prefixed string: u32 length | bytes.
inline void PutString(std::string* out, std::string_view v) {
  PutU32(out, static_cast<uint32_t>(v.size()));
  out->append(v);
}

inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

inline uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Sequential reader over a buffer; every Get fails (returns false) past the end.
class Decoder {
 public:
  explicit Decoder(std::string_view data) : data_(data) {}
  bool GetU8(uint8_t* v) {
    if (data_.size() < 1) return false;
    *v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool GetU32(uint32_t* v) {
    if (data_.size() < 4) return false;
    *v = encoding::GetU32(data_.data());
    data_.remove_prefix(4);
    return true;
  }
  bool GetU64(uint64_t* v) {
    if (data_.size() < 8) return false;
    *v = encoding::GetU64(data_.data());
    data_.remove_prefix(8);
    return true;
  }
  bool GetBytes(size_t n, std::string_view* v) {
    if (data_.size() < n) return false;
    *v = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  // A string written by PutString.
  bool GetString(std::string* v) {
    uint32_t n = 0;
    std::string_view bytes;
    if (!GetU32(&n) || !GetBytes(n, &bytes)) return false;
    v->assign(bytes);
    return true;
  }
  size_t remaining() const { return data_.size(); }
  std::string_view rest() const { return data_; }

 private:
  std::string_view data_;
};

// A non-negative decimal number padded with zeros to 20 digits (the width of UINT64_MAX), so that
// file names sort by number.
inline std::string Pad20(uint64_t v) {
  std::string s = std::to_string(v);
  return std::string(20 - s.size(), '0') + s;
}

// Parses a run of decimal digits (no sign, no spaces) that fits in a uint64_t.
inline bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace dispotify::encoding
