#pragma once
// Who is calling: turns the credentials a request carries into a Principal (policy.h), or says
// precisely why not. Pure decision logic over injected lookups (the catalog's user and token
// records, the OIDC issuer's keys, the clock), so tests drive it with tables; the HTTP guard
// (node/api/auth_guard.h) extracts the credentials and answers 401/403.
//
// Credentials, in the order they are looked at:
//  1. `Authorization: Bearer <secret>`, which is one of
//     - the configured static admin token (api_token / api_token_file: the operator's and the
//       Prometheus scraper's Secret), compared in constant time: principal "api-token", admin;
//     - an API token ("dsp_..."): its record must exist (revoked = deleted), be unexpired, and its
//       owner must exist and not be disabled; its roles are its own bounded by the owner's
//       current ones (a demoted user's old tokens lose the roles too);
//     - a JWT from the configured OIDC issuer (three dot-separated parts): signature, iss, aud,
//       exp/nbf (jwt.h), roles from the configured claim; unknown role names are ignored.
//  2. The session cookie's value ("dss_..."), checked like an API token but of kind session.
// A request with none of these is anonymous (the policy then answers 401 for anything not public).
// A bearer that is present but bad is an error even where anonymous access would be allowed: a
// client with a broken token should learn it at once, not on the first protected call.
//
// Failure codes are stable (logged, counted by reason, returned in the 401 body):
//   invalid_token   unknown or revoked token, a malformed bearer, a JWT with OIDC off
//   token_expired   an API token or session past its expiry
//   user_disabled   the token's owner is disabled or deleted
//   jwt_<reason>    a JWT refused by jwt.h (jwt_expired, jwt_wrong_audience, jwt_bad_signature,
//                   jwt_unknown_key, ...); jwt_keys_unavailable is the issuer's fault (503)
//   store_unavailable  the records could not be read (503)

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/status.h"
#include "node/auth/jwt.h"
#include "node/auth/policy.h"
#include "node/auth/records.h"

namespace dispotify::auth {

class KeyCache;

// The records, as the catalog holds them (node/api adapts the MetadataStore).
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  virtual Result<std::optional<UserRecord>> FindUser(std::string_view name) = 0;
  virtual Result<std::optional<TokenRecord>> FindToken(std::string_view id) = 0;
};

struct Presented {
  std::optional<std::string> bearer;   // the value after "Bearer "
  std::optional<std::string> session;  // the session cookie's value
};

enum class Via : uint8_t { kAnonymous, kStaticToken, kApiToken, kSession, kOidc };

struct Authenticated {
  Principal principal;
  Via via = Via::kAnonymous;
  std::string token_id;     // kApiToken, kSession
  std::string csrf_sha256;  // kSession
};

struct AuthError {
  std::string code;  // see above
  std::string message;
  bool unavailable = false;  // not the caller's fault: answer 503, not 401
};

class Authenticator {
 public:
  struct Options {
    std::string static_admin_token;   // "": none
    KeyCache* oidc = nullptr;         // null: OIDC off
    JwtPolicy oidc_policy;            // with oidc
    std::function<int64_t()> now_ms;  // wall clock, ms since the Unix epoch
  };

  Authenticator(Options options, CredentialSource* source);

  std::variant<Authenticated, AuthError> Authenticate(const Presented& presented) const;

 private:
  std::variant<Authenticated, AuthError> FromToken(std::string_view secret, TokenKind kind) const;
  std::variant<Authenticated, AuthError> FromJwt(std::string_view jwt) const;

  Options options_;
  CredentialSource* source_;
};

// "Bearer <x>" (scheme case-insensitive) → x; nullopt for another scheme or an empty value.
std::optional<std::string> BearerOf(std::string_view authorization);
// The value of cookie `name` in a Cookie header ("a=1; b=2"); nullopt when absent.
std::optional<std::string> CookieValue(std::string_view cookie_header, std::string_view name);
// Constant-time equality (the time depends on the lengths only).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace dispotify::auth
