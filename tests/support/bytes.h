#pragma once
// Deterministic pseudo-random bytes for tests (xorshift64): the same seed gives the same bytes on
// every run and machine, so a failure reproduces.

#include <cstddef>
#include <cstdint>
#include <string>

namespace dispotify::testing_bytes {

inline std::string Bytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

}  // namespace dispotify::testing_bytes
