#pragma once
// One entry of the audit trail: who did what, when, from where, with which result. Entries are
// hash-chained (common/audit/chain.h): each carries the hash of the one before it, so rewriting or
// dropping an entry breaks every later link. The encoding below is what the hash covers, so it
// is canonical (one byte string per entry) and must never change silently: a change is a new
// version, and a test pins the hash of a fixed entry.
//
// Layout (all integers little-endian, common/encoding.h; a string is `u32 length | bytes`):
//
//   u8  version (= 1)
//   u64 seq          1 for the first entry ever, then +1 with no gap
//   u64 time_ms      milliseconds since the Unix epoch (an i64 written as its two's complement)
//   u8  action       Action below
//   u8  outcome      Outcome below
//   string actor     user or token name, "anonymous" when none was presented
//   string client    the caller's address as the node saw it
//   string target    what the action was on: a file id, a user name, a route
//   string code      a short machine-readable result code ("ok", "forbidden", "bad_signature")
//   string request_id
//   string detail    small free text, e.g. an upload's SHA-256 or a denial count
//   32 bytes prev_hash   hash of the entry before (all zeros before the first entry, or the
//                        checkpoint's hash when older entries were dropped)
//   32 bytes hash        SHA-256 of every byte above, from the version through prev_hash
//
// So the hashed bytes are exactly the encoding minus its last 32 bytes. Decoding consumes the
// whole input; an unknown version, an unknown action or outcome, a field over its limit,
// invalid UTF-8 or bytes left over make the entry corrupt (Status::Corruption). Encoding an
// entry that breaks a limit is refused (Status::InvalidArgument), so a stored entry always
// decodes.
//
// Action and Outcome values are part of the format: append new ones, never renumber.
//
// Secrets never belong in an entry. Anything a caller copies from a request (a target, a
// detail, an error text) goes through Redact() first, or through Sanitize(), which also fits it
// within a field's limit.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dispotify::audit {

inline constexpr uint8_t kEntryVersion = 1;
inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// Field limits, in bytes. Generous for what each field is meant to hold, small enough that a
// flood of entries cannot grow the replicated log fast.
inline constexpr size_t kMaxActorBytes = 256;
inline constexpr size_t kMaxClientBytes = 256;
inline constexpr size_t kMaxTargetBytes = 1024;
inline constexpr size_t kMaxCodeBytes = 64;
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr size_t kMaxDetailBytes = 1024;
// The largest encoding: fixed part plus every string at its limit.
inline constexpr size_t kMaxEntryBytes = 1 + 8 + 8 + 1 + 1 + 6 * 4 + kMaxActorBytes + kMaxClientBytes +
                                         kMaxTargetBytes + kMaxCodeBytes + kMaxRequestIdBytes +
                                         kMaxDetailBytes + 2 * kHashSize;

inline constexpr std::string_view kAnonymous = "anonymous";

enum class Action : uint8_t {
  kUpload = 1,
  kDelete = 2,
  kLogin = 3,
  kLoginFailed = 4,
  kLogout = 5,
  kTokenCreated = 6,
  kTokenRevoked = 7,
  kUserCreated = 8,
  kUserDeleted = 9,
  kUserDisabled = 10,
  kPasswordChanged = 11,
  kRoleChanged = 12,
  kAdmin = 13,   // a cluster admin API call (membership, transfer, settings)
  kDenied = 14,  // an aggregated run of refused requests (node/audit/denials.h)
  kKeyRotated = 15,
};
inline constexpr uint8_t kMaxAction = 15;

enum class Outcome : uint8_t {
  kOk = 1,
  kDenied = 2,
  kError = 3,
};
inline constexpr uint8_t kMaxOutcome = 3;

// Stable names, as the admin API and the CLI print them.
std::string_view ActionName(Action action);
std::string_view OutcomeName(Outcome outcome);

struct Entry {
  uint64_t seq = 0;
  int64_t time_ms = 0;
  std::string actor{kAnonymous};
  std::string client;
  Action action = Action::kAdmin;
  std::string target;
  Outcome outcome = Outcome::kOk;
  std::string code;
  std::string request_id;
  std::string detail;
  Hash prev_hash{};
  Hash hash{};

  bool operator==(const Entry&) const = default;
};

// kInvalidArgument naming the first field that breaks its limit, is not valid UTF-8, or holds an
// unknown enum value. An empty actor is refused too: callers say kAnonymous.
Status Validate(const Entry& entry);

// The canonical bytes the hash covers (the whole encoding but the trailing hash).
Result<std::string> EncodeForHash(const Entry& entry);
// The full encoding, `hash` included.
Result<std::string> Encode(const Entry& entry);
Result<Entry> Decode(std::string_view bytes);

// SHA-256 of EncodeForHash(entry); the entry's own `hash` field is ignored.
Result<Hash> ComputeHash(const Entry& entry);

// Masks what looks like a secret in free text, keeping the text around it readable:
//   - API tokens: `dsp_` followed by 20 or more of [A-Za-z0-9_-] -> "dsp_[REDACTED]";
//   - JWTs: `eyJ...` followed by at least one more dot-separated base64url part ->
//     "[REDACTED-JWT]";
//   - the credential after an HTTP auth scheme ("Bearer x", "Basic x") -> "Bearer [REDACTED]";
//   - the value after a key that names a secret (password, passwd, pwd, secret, token, api_key,
//     apikey, authorization, cookie, session, credential, private_key; any key containing one of
//     them, case-insensitively) and '=' or ':' -> "password=[REDACTED]", quotes kept, so
//     query strings, headers and JSON alike; an unquoted value after '=' ends at a space or one
//     of "&,;})]", after ':' at the end of the line (a header value may hold spaces);
//   - the password of a URL's user info ("https://u:p@host") -> "https://u:[REDACTED]@host".
// It errs on the side of masking: an audit entry loses a word, never leaks a credential.
std::string Redact(std::string_view text);

// Redact(), then control characters become ' ' and invalid UTF-8 bytes '?', and the result is cut
// to at most `max_bytes` at a character boundary ("..." marks a cut). For copying request data
// into a field: the result always passes Validate for a field of that limit.
std::string Sanitize(std::string_view text, size_t max_bytes);

}  // namespace dispotify::audit
