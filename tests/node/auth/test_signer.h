#pragma once
// Test-only: keys generated per test run and a minimal JWS signer, so that every token the tests
// validate (valid or forged) is built here rather than copied from elsewhere.

#include <cpprest/json.h>

#include <string>
#include <string_view>
#include <vector>

#include "node/auth/jwks.h"

namespace dispotify::auth::testing {

class TestKey {
 public:
  static TestKey Rsa(int bits = 2048);
  static TestKey EcP256();

  KeyType type() const { return type_; }
  // The public half as a JWK with "use": "sig"; tests edit the returned object to spoil it.
  web::json::value Jwk(const std::string& kid) const;
  // The JWS signature of `input`: RS256, or ES256 as raw R || S (`der` for the DER form instead).
  std::string Sign(std::string_view input, bool der = false) const;
  // The public key as PEM text, the bytes an HMAC confusion attack uses as the secret.
  std::string PublicPem() const;

 private:
  TestKey(KeyType type, EvpPkeyPtr key) : type_(type), key_(std::move(key)) {}
  KeyType type_;
  EvpPkeyPtr key_;
};

std::string Jwks(const std::vector<web::json::value>& jwks);

// "<b64(header)>.<b64(payload)>"
std::string SigningInput(const web::json::value& header, const web::json::value& payload);
std::string SignedToken(const web::json::value& header, const web::json::value& payload, const TestKey& key);
std::string Hs256Token(const web::json::value& header, const web::json::value& payload,
                       std::string_view secret);

}  // namespace dispotify::auth::testing
