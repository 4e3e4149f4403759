#pragma once
// Password hashing for user logins: Argon2id through libargon2 (the reference implementation,
// Debian's libargon2-dev), never code of ours. Hashes are the standard encoded strings
// ("$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>"), so they carry their own parameters: a hash
// made with older, cheaper parameters still verifies, and NeedsRehash says when to replace it at
// the next successful login.
//
// Cost. The defaults (64 MiB, 3 passes, 1 lane) take about 100 ms on one core of the machines
// this runs on (measured by password_test's CostIsAboutATenthOfASecond, which prints it). A login
// costs that once; API tokens and sessions are checked with a SHA-256 (tokens.h), never with this.
// Every hash allocates m KiB: callers bound how many run at once (a login rate limit).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dispotify::auth {

struct Argon2Params {
  uint32_t memory_kib = 64 * 1024;
  uint32_t passes = 3;
  uint32_t lanes = 1;
};

// Passwords longer than this are refused (kInvalidArgument) before any hashing: a megabyte
// "password" must not become a cheap way to burn a core.
inline constexpr size_t kMaxPasswordBytes = 1024;
inline constexpr size_t kMinPasswordBytes = 8;

// A new encoded hash of `password` with a fresh 16-byte random salt. kInvalidArgument for a
// password outside [kMinPasswordBytes, kMaxPasswordBytes]; kUnavailable when libargon2 cannot
// run (out of memory), kIoError when no random salt can be had.
Result<std::string> HashPassword(std::string_view password, const Argon2Params& params = {});

// Whether `password` matches `encoded` (in constant time, by libargon2). False for a wrong
// password; kInvalidArgument for an encoded string that is not an Argon2id hash (a corrupt user
// record must not read as "wrong password" forever without anyone noticing); kUnavailable when
// libargon2 runs out of memory.
Result<bool> VerifyPassword(std::string_view encoded, std::string_view password);

// True when `encoded` was made with parameters other than `params` (rehash after a login).
bool NeedsRehash(std::string_view encoded, const Argon2Params& params = {});

}  // namespace dispotify::auth
