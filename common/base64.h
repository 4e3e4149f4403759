#pragma once
// Base64 (RFC 4648): the standard alphabet for HTTP fields such as Repr-Digest, the URL-safe one
// for JSON Web Tokens and keys (RFC 7515 §2, which drops the padding).

#include <optional>
#include <string>
#include <string_view>

namespace dispotify {

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(std::string_view bytes);
// Accepts missing padding (RFC 8941 §4.2.7 asks parsers to); nullopt for anything else that is
// not base64.
std::optional<std::string> Base64Decode(std::string_view text);

// base64url (RFC 4648 §5) without padding, as JWS and JWK use it.
std::string Base64UrlEncode(std::string_view bytes);
// Strict: nullopt for padding, characters outside the URL-safe alphabet, a length no encoding
// produces, or non-zero leftover bits. A signed token then has one text per content, so a
// signature cannot be replayed under a second spelling of the same bytes.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace dispotify
