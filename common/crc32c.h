#pragma once
// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of every record Dispotify
// writes to disk. Uses the SSE4.2 crc32 instruction when the CPU has it, a slice-by-8 table
// otherwise; both give the same values.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dispotify::crc32c {

// Extends `crc` (the CRC-32C of some bytes A) to the CRC-32C of A followed by data[0, n).
// Extend(0, ...) is the CRC-32C of the data alone.
uint32_t Extend(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(const void* data, size_t n) {
  return Extend(0, data, n);
}
inline uint32_t Value(std::string_view data) {
  return Extend(0, data.data(), data.size());
}

// The table implementation, whatever the CPU (exposed for tests).
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
// True when Extend uses the hardware instruction.
bool IsHardwareAccelerated();

}  // namespace dispotify::crc32c
