#pragma once
// The Repr-Digest HTTP field (RFC 9530): the client states the SHA-256 of the body it uploads, so
// the node refuses (400) a body that arrived other than it was sent. dispotifyctl writes it; the
// REST API reads it. Shared here so that both sides agree on one encoding.
//
// The field is a Structured Fields Dictionary (RFC 8941 §3.2): algorithm keys mapped to Byte
// Sequences, e.g.
//   Repr-Digest: sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:, sha-512=:...:
// Only "sha-256" is used; other algorithms (and any parameters) are skipped. Several field lines
// are one list joined by ", " (RFC 9110 §5.3), as HeaderMap::GetAll gives them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/sha256.h"
#include "common/status.h"

namespace dispotify {

// "sha-256=:<base64 of digest>:"
std::string FormatReprDigest(const Sha256::Digest& digest);

// The sha-256 digest as 64 lowercase hex digits; nullopt when no field line names sha-256.
// kInvalidArgument when the field is not a well-formed dictionary, or its sha-256 member is not a
// byte sequence of 32 bytes.
Result<std::optional<std::string>> Sha256FromReprDigest(const std::vector<std::string_view>& field_lines);

}  // namespace dispotify
