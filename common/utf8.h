#pragma once
// UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.

#include <string_view>

namespace dispotify {

bool IsValidUtf8(std::string_view text);

}  // namespace dispotify
