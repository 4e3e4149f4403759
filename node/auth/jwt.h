#pragma once
// Validation of OpenID Connect access tokens sent as "Authorization: Bearer": JSON Web Tokens
// (RFC 7519) in the JWS compact serialisation (RFC 7515 §7.1), signed with RS256 or ES256
// (RFC 7518 §3.3, §3.4) by a key of the issuer's JWKS. Pure: no clock, no network; the caller
// passes the keys and the time (KeyCache does both for the node).
//
// What is refused, whatever the header says: "alg: none", every HMAC algorithm (a verifier that
// let HS256 through would take the issuer's public key as a shared secret, and anyone could
// sign), any algorithm but RS256/ES256, an algorithm that does not fit the selected key's type, a
// "crit" header (no extension is understood), JWE, the JSON serialisation, padded or non-URL-safe
// base64, and tokens over kMaxTokenSize.
//
// Failures are values of JwtResult rather than Result<Claims>: the caller needs the reason as a
// code, not a message to parse — to answer 401 or 503, to count failures per reason in a metric,
// and (KeyCache) to refetch the JWKS on kUnknownKey alone. JwtErrorName gives each code a stable
// name for logs and metric labels; `detail` is for humans and may change. Neither ever contains
// the token or its signature.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "node/auth/jwks.h"

namespace dispotify::auth {

inline constexpr size_t kMaxTokenSize = 16 * 1024;

// Stable: the names are logged and used as metric labels. Append only.
enum class JwtError : uint8_t {
  kMalformed,        // not three base64url parts of JSON objects, a claim of the wrong type, crit
  kUnsupportedAlg,   // alg other than RS256/ES256 (none, HS*, PS*, ...)
  kKeyMismatch,      // the selected key is of another type than alg asks (RSA key, ES256 token)
  kUnknownKey,       // no key with the token's kid (or, without kid, not exactly one candidate)
  kBadSignature,     // includes an ES256 signature that is not 64 bytes
  kExpired,          // now >= exp + leeway
  kNotYetValid,      // now + leeway < nbf, or iat in the future by more than the leeway
  kWrongIssuer,      // iss is not the configured issuer
  kWrongAudience,    // aud does not contain the configured audience
  kMissingClaim,     // no iss, aud, exp or sub
  kKeysUnavailable,  // (KeyCache) the issuer's keys could not be fetched: not the token's fault
};

// "malformed", "unsupported_alg", "key_mismatch", "unknown_key", "bad_signature", "expired",
// "not_yet_valid", "wrong_issuer", "wrong_audience", "missing_claim", "keys_unavailable".
std::string_view JwtErrorName(JwtError code);

struct JwtFailure {
  JwtError code;
  std::string detail;

  // kUnavailable for kKeysUnavailable, kInvalidArgument otherwise; the message starts with the
  // code's name. For callers that only propagate.
  Status ToStatus() const;
};

struct JwtPolicy {
  std::string issuer;    // compared exactly with iss
  std::string audience;  // must be in aud (a string or an array of strings)
  // Where the roles are: a claim name, or a dotted path into nested objects (Keycloak's
  // "realm_access.roles"). The value is an array of strings or one space-separated string (as
  // "scope" is). Absent → no roles, which is not a failure: authorisation decides.
  std::string roles_claim = "roles";
  int64_t leeway_s = 60;  // clock skew allowed between the issuer and us, on exp, nbf and iat
};

struct Claims {
  std::string subject;
  std::vector<std::string> roles;
  int64_t expires_at = 0;  // exp, seconds since the Unix epoch
  std::string issuer;
};

class [[nodiscard]] JwtResult {
 public:
  JwtResult(Claims claims) : v_(std::move(claims)) {}        // NOLINT(google-explicit-constructor)
  JwtResult(JwtFailure failure) : v_(std::move(failure)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<Claims>(v_); }
  const Claims& value() const { return std::get<Claims>(v_); }
  Claims& value() { return std::get<Claims>(v_); }
  const Claims* operator->() const { return &value(); }
  const JwtFailure& failure() const { return std::get<JwtFailure>(v_); }
  JwtError code() const { return failure().code; }

 private:
  std::variant<Claims, JwtFailure> v_;
};

// Checks, in this order: form and size, header (alg, crit, kid → key), signature, then the claims
// (iss, aud, exp, nbf, iat, sub, roles). The payload is parsed only once the signature holds.
// `now_s` is wall-clock time in seconds since the Unix epoch.
JwtResult ValidateJwt(std::string_view token, const KeySet& keys, const JwtPolicy& policy, int64_t now_s);

}  // namespace dispotify::auth
