#include "node/auth/authenticator.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

#include "node/auth/key_cache.h"

namespace dispotify::auth {
namespace {

AuthError Refuse(std::string code, std::string message, bool unavailable = false) {
  return AuthError{std::move(code), std::move(message), unavailable};
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

Authenticator::Authenticator(Options options, CredentialSource* source)
    : options_(std::move(options)), source_(source) {}

std::variant<Authenticated, AuthError> Authenticator::Authenticate(const Presented& presented) const {
  if (presented.bearer) {
    const std::string& b = *presented.bearer;
    if (!options_.static_admin_token.empty() && ConstantTimeEquals(b, options_.static_admin_token)) {
      Authenticated a;
      a.principal.name = "api-token";
      a.principal.roles = {Role::kAdmin};
      a.via = Via::kStaticToken;
      return a;
    }
    if (StartsWith(b, kApiTokenPrefix)) return FromToken(b, TokenKind::kApi);
    if (std::count(b.begin(), b.end(), '.') == 2) return FromJwt(b);
    return Refuse("invalid_token", "the bearer token is not a token of this cluster");
  }
  if (presented.session) {
    if (!StartsWith(*presented.session, kSessionPrefix)) {
      return Refuse("invalid_token", "the session cookie is malformed; log in again");
    }
    return FromToken(*presented.session, TokenKind::kSession);
  }
  return Authenticated{};
}

std::variant<Authenticated, AuthError> Authenticator::FromToken(std::string_view secret,
                                                                TokenKind kind) const {
  const bool session = kind == TokenKind::kSession;
  auto token = source_->FindToken(SecretId(secret));
  if (!token.ok())
    return Refuse("store_unavailable", "credentials cannot be checked now: " + token.status().message(),
                  true);
  if (!token->has_value() || (*token)->kind != kind) {
    return Refuse("invalid_token",
                  session ? "the session has ended; log in again" : "unknown or revoked token");
  }
  const TokenRecord& t = **token;
  if ((t.expires_ms != 0 || session) && options_.now_ms() >= t.expires_ms) {
    return Refuse("token_expired",
                  session ? "the session has expired; log in again" : "the token has expired");
  }
  auto owner = source_->FindUser(t.owner);
  if (!owner.ok())
    return Refuse("store_unavailable", "credentials cannot be checked now: " + owner.status().message(),
                  true);
  if (!owner->has_value() || (*owner)->disabled) {
    return Refuse("user_disabled", "the user \"" + t.owner + "\" is disabled or was removed");
  }
  Authenticated a;
  a.principal.name = t.owner;
  // A session is its user: it holds the user's roles as they are now (a promotion or demotion
  // applies at the next request). An API token holds the roles it was made with, bounded by its
  // owner's current ones.
  a.principal.roles = session ? (*owner)->roles : IntersectRoles(t.roles, (*owner)->roles);
  a.via = session ? Via::kSession : Via::kApiToken;
  a.token_id = t.id;
  a.csrf_sha256 = t.csrf_sha256;
  return a;
}

std::variant<Authenticated, AuthError> Authenticator::FromJwt(std::string_view jwt) const {
  if (options_.oidc == nullptr)
    return Refuse("invalid_token", "a JWT was sent but no OIDC issuer is configured");
  JwtResult r = options_.oidc->Validate(jwt, options_.oidc_policy, options_.now_ms() / 1000);
  if (!r.ok()) {
    const bool unavailable = r.code() == JwtError::kKeysUnavailable;
    return Refuse("jwt_" + std::string(JwtErrorName(r.code())), r.failure().detail, unavailable);
  }
  Authenticated a;
  a.principal.name = r->subject;
  for (const auto& name : r->roles) {
    if (auto role = ParseRole(name)) a.principal.roles.push_back(*role);
  }
  std::sort(a.principal.roles.begin(), a.principal.roles.end());
  a.principal.roles.erase(std::unique(a.principal.roles.begin(), a.principal.roles.end()),
                          a.principal.roles.end());
  a.via = Via::kOidc;
  return a;
}

std::optional<std::string> BearerOf(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  std::string_view v = authorization.substr(kScheme.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

std::optional<std::string> CookieValue(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view pair = header.substr(pos, end - pos);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      std::string_view v = pair.substr(eq + 1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dispotify::auth
