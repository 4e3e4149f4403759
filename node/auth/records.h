#pragma once
// Users and API tokens as the catalog stores them (settings user/<name> and token/<id>; see
// node/catalog/commands.h for the keys and the rules of their commands). The records are JSON, so
// `sqlite3 catalog.db "select * from settings"` is readable, and a field added later is ignored by
// an older node rather than breaking it.
//
// A token's secret is never stored: the record's id is the SHA-256 of the secret (hex), so a copy
// of the catalog (a snapshot, a backup, the PostgreSQL database) grants nothing. Secrets are 32
// random bytes, base64url, behind a prefix that says what they are ("dsp_" for API tokens, "dss_"
// for browser sessions): a secret pasted into a log or an issue is recognisable, and a scanner can
// look for it. 256 random bits need no slow hash: a SHA-256 per request is the whole check.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node/auth/policy.h"

namespace dispotify::auth {

struct UserRecord {
  std::string name;
  std::vector<Role> roles;
  std::string password_hash;  // Argon2id encoded (password.h); "" = no password login
  bool disabled = false;
  int64_t created_ms = 0;
  // Made by a login through the OIDC issuer (named "oidc-<subject>", no password, roles from the
  // issuer's token at each login): such a login may update only a user so marked, never a local
  // one that happens to bear the name.
  bool oidc = false;
};

enum class TokenKind : uint8_t { kApi, kSession };

struct TokenRecord {
  std::string id;     // SHA-256 (hex) of the secret
  std::string owner;  // a user name
  std::string name;   // given by the owner ("laptop", "ci"); sessions: "session"
  TokenKind kind = TokenKind::kApi;
  std::vector<Role> roles;  // a subset of the owner's; the owner's current roles still bound it
  int64_t created_ms = 0;
  int64_t expires_ms = 0;   // 0: never (API tokens only; sessions always expire)
  std::string csrf_sha256;  // sessions: SHA-256 (hex) of the CSRF token handed to the page
};

std::string EncodeUser(const UserRecord& user);
// kCorruption for a record that does not parse (the catalog holds only what EncodeUser wrote).
Result<UserRecord> DecodeUser(std::string_view json);
std::string EncodeToken(const TokenRecord& token);
Result<TokenRecord> DecodeToken(std::string_view json);

// Roles as JSON names and back ("listener", "uploader", "admin"); kInvalidArgument for an unknown
// name. Sorted and without duplicates.
Result<std::vector<Role>> ParseRoles(const std::vector<std::string>& names);
std::vector<std::string> RoleNames(const std::vector<Role>& roles);
// The roles of `requested` that `held` grants (a role is granted by itself or by admin, which
// holds every permission; uploader grants listener).
std::vector<Role> IntersectRoles(const std::vector<Role>& requested, const std::vector<Role>& held);

inline constexpr std::string_view kApiTokenPrefix = "dsp_";
inline constexpr std::string_view kSessionPrefix = "dss_";

struct NewSecret {
  std::string secret;  // shown once to its owner
  std::string id;      // SHA-256 (hex) of `secret`: the record's id
};
// A fresh secret with `prefix` from the OS's random source (RAND_bytes); kIoError when none.
Result<NewSecret> MakeSecret(std::string_view prefix);
// The id a presented secret would have (its SHA-256, hex).
std::string SecretId(std::string_view secret);

}  // namespace dispotify::auth
