#pragma once
// SHA-256 (content integrity of audio files) and MD5 (placement on the hash ring only; never for
// integrity), over OpenSSL 3's EVP interface. OpenSSL stays out of this header.
//
// A failure inside OpenSSL here can only mean a broken installation or an exhausted heap (the
// digests are built in and take no input that can be rejected), so it stops the process.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace dispotify {

class Sha256 {
 public:
  static constexpr size_t kDigestSize = 32;
  static constexpr size_t kHexSize = 2 * kDigestSize;
  using Digest = std::array<uint8_t, kDigestSize>;

  // Ready for Update (Init already done).
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Starts a new digest, forgetting any bytes given so far.
  void Init();
  void Update(std::string_view data);
  // The digest of the bytes given since the last Init; the object is then re-initialised, ready
  // for a new digest.
  Digest Final();
  // Final() as 64 lowercase hex characters.
  std::string FinalHex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot helpers.
Sha256::Digest Sha256Digest(std::string_view data);
std::string Sha256Hex(std::string_view data);

// MD5 of `data` (16 bytes). For the placement ring only.
std::array<uint8_t, 16> Md5Digest(std::string_view data);

// Lowercase hex of raw bytes.
std::string ToHex(const uint8_t* data, size_t n);
template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& bytes) {
  return ToHex(bytes.data(), N);
}

// True when `hex` is exactly 64 hex digits (either case): the text form of a SHA-256.
bool IsSha256Hex(std::string_view hex);

}  // namespace dispotify
