#pragma once
// The signing keys of an OpenID Connect issuer: its discovery document (OpenID Connect Discovery
// 1.0 §3), which names the JWKS, and the JWK Set itself (RFC 7517), turned into OpenSSL public
// keys. Only what ValidateJwt can use is kept: RSA keys of at least 2048 bits for RS256 and EC
// P-256 keys for ES256 (RFC 7518 §6). Any other entry (an encryption key, another curve, a
// symmetric key, a malformed value) is skipped and counted, never fatal: issuers publish keys for
// other clients and algorithms beside ours.
//
// A KeySet is immutable once parsed; its EVP_PKEYs are only read (verification), which OpenSSL 3
// allows from several threads at once.

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/openssl_ptr.h"
#include "common/status.h"

namespace dispotify::auth {

using ::dispotify::EvpPkeyPtr;

enum class KeyType : uint8_t { kRsa, kEcP256 };

struct PublicKey {
  std::string kid;  // empty when the JWK has none
  KeyType type = KeyType::kRsa;
  EvpPkeyPtr pkey;
};

class KeySet {
 public:
  KeySet() = default;
  KeySet(std::vector<PublicKey> keys, size_t skipped) : keys_(std::move(keys)), skipped_(skipped) {}

  const std::vector<PublicKey>& keys() const { return keys_; }
  // JWKs left out, and why, for the log.
  size_t skipped() const { return skipped_; }
  bool HasKid(std::string_view kid) const;

 private:
  std::vector<PublicKey> keys_;
  size_t skipped_ = 0;
};

// kInvalidArgument when `json` is not a JSON object with a "keys" array; a set with no usable key
// is not an error here (ValidateJwt then finds no key).
Result<KeySet> ParseJwks(std::string_view json);

struct Discovery {
  std::string issuer;
  std::string jwks_uri;
  // The browser login's endpoints (Authorization Code flow); "" when the document has none, which
  // only that login needs.
  std::string authorization_endpoint;
  std::string token_endpoint;
};

// kInvalidArgument when `json` lacks a string "issuer" or "jwks_uri"; kFailedPrecondition when
// its issuer is not `expected_issuer` exactly (OpenID Connect Discovery §4.3: no normalising, so
// a trailing slash matters), since keys published for another issuer must not be trusted for ours.
Result<Discovery> ParseDiscovery(std::string_view json, std::string_view expected_issuer);

// Where the issuer's discovery document lives (OpenID Connect Discovery §4): the issuer without a
// trailing slash, then "/.well-known/openid-configuration".
std::string DiscoveryUrl(std::string_view issuer);

}  // namespace dispotify::auth
