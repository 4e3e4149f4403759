#include "node/auth/password.h"

#include <argon2.h>
#include <openssl/rand.h>

#include <array>
#include <vector>

namespace dispotify::auth {

namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
constexpr std::string_view kPrefix = "$argon2id$";

Status CheckLength(std::string_view password) {
  if (password.size() < kMinPasswordBytes) {
    return Status::InvalidArgument("a password has at least " + std::to_string(kMinPasswordBytes) + " bytes");
  }
  if (password.size() > kMaxPasswordBytes) {
    return Status::InvalidArgument("a password has at most " + std::to_string(kMaxPasswordBytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, const Argon2Params& params) {
  DISPOTIFY_RETURN_IF_ERROR(CheckLength(password));
  std::array<unsigned char, kSaltBytes> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    return Status::IoError("no random bytes for a password salt");
  }
  const size_t length =
      argon2_encodedlen(params.passes, params.memory_kib, params.lanes, kSaltBytes, kHashBytes, Argon2_id);
  std::vector<char> encoded(length);
  const int rc =
      argon2id_hash_encoded(params.passes, params.memory_kib, params.lanes, password.data(), password.size(),
                            salt.data(), salt.size(), kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return Status::Unavailable(std::string("argon2id: ") + argon2_error_message(rc));
  return std::string(encoded.data());
}

Result<bool> VerifyPassword(std::string_view encoded, std::string_view password) {
  if (!encoded.starts_with(kPrefix)) return Status::InvalidArgument("not an Argon2id hash");
  if (password.size() > kMaxPasswordBytes) return false;
  // libargon2 wants NUL-terminated text.
  const std::string text(encoded);
  const int rc = argon2id_verify(text.c_str(), password.data(), password.size());
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) return Status::Unavailable("argon2id: out of memory");
  return Status::InvalidArgument(std::string("not a valid Argon2id hash: ") + argon2_error_message(rc));
}

bool NeedsRehash(std::string_view encoded, const Argon2Params& params) {
  const std::string want = std::string(kPrefix) + "v=" + std::to_string(ARGON2_VERSION_NUMBER) +
                           "$m=" + std::to_string(params.memory_kib) + ",t=" + std::to_string(params.passes) +
                           ",p=" + std::to_string(params.lanes) + "$";
  return !encoded.starts_with(want);
}

}  // namespace dispotify::auth
