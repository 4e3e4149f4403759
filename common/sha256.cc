#include "common/sha256.h"

#include <openssl/evp.h>

#include "common/assert.h"

namespace dispotify {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  DISPOTIFY_CHECK(impl_->ctx != nullptr, "EVP_MD_CTX_new");
  Init();
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Init() {
  DISPOTIFY_CHECK(EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex(sha256)");
}

void Sha256::Update(std::string_view data) {
  if (data.empty()) return;
  DISPOTIFY_CHECK(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) == 1, "EVP_DigestUpdate");
}

Sha256::Digest Sha256::Final() {
  Digest out{};
  unsigned int n = 0;
  DISPOTIFY_CHECK(EVP_DigestFinal_ex(impl_->ctx, out.data(), &n) == 1 && n == kDigestSize,
                  "EVP_DigestFinal_ex(sha256)");
  Init();
  return out;
}

std::string Sha256::FinalHex() {
  return ToHex(Final());
}

Sha256::Digest Sha256Digest(std::string_view data) {
  Sha256::Digest out{};
  unsigned int n = 0;
  DISPOTIFY_CHECK(EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr) == 1 &&
                      n == Sha256::kDigestSize,
                  "EVP_Digest(sha256)");
  return out;
}

std::string Sha256Hex(std::string_view data) {
  return ToHex(Sha256Digest(data));
}

std::array<uint8_t, 16> Md5Digest(std::string_view data) {
  std::array<uint8_t, 16> out{};
  unsigned int n = 0;
  DISPOTIFY_CHECK(
      EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_md5(), nullptr) == 1 && n == out.size(),
      "EVP_Digest(md5)");
  return out;
}

std::string ToHex(const uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0F];
  }
  return out;
}

bool IsSha256Hex(std::string_view hex) {
  if (hex.size() != Sha256::kHexSize) return false;
  for (char c : hex) {
    const bool digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!digit) return false;
  }
  return true;
}

}  // namespace dispotify
