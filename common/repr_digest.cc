#include "common/repr_digest.h"

#include <cstdint>

namespace dispotify {
namespace {

bool IsLcAlpha(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsAlpha(char c) {
  return (c >= 'A' && c <= 'Z') || IsLcAlpha(c);
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
// tchar of RFC 9110 §5.6.2, plus ':' and '/' (RFC 8941 §3.3.4).
bool IsTokenChar(char c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  for (char t : std::string_view("!#$%&'*+-.^_`|~:/")) {
    if (c == t) return true;
  }
  return false;
}

// The parsing algorithms of RFC 8941 §4.2, for a Dictionary whose members are read only far
// enough to find one key's Byte Sequence; everything else is checked for syntax and skipped.
class DictionaryParser {
 public:
  explicit DictionaryParser(std::string_view input) : in_(input) {}

  // Fills `found` with the last byte sequence of member `key` (a later duplicate wins, §4.2.2);
  // `found_other` when `key` is present with another type of value.
  bool Parse(std::string_view key, std::optional<std::string>* found, bool* found_other) {
    SkipSp();
    if (in_.empty()) return true;
    while (true) {
      std::string_view name;
      if (!Key(&name)) return false;
      std::optional<std::string> bytes;
      bool is_bytes = false;
      if (Peek('=')) {
        in_.remove_prefix(1);
        if (Peek('(')) {
          if (!InnerList()) return false;
        } else {
          if (!BareItem(&bytes, &is_bytes)) return false;
          if (!Parameters()) return false;
        }
      } else if (!Parameters()) {  // a bare key is the Boolean true
        return false;
      }
      if (name == key) {
        *found = is_bytes ? bytes : std::nullopt;
        *found_other = !is_bytes;
      }
      SkipOws();
      if (in_.empty()) return true;
      if (!Peek(',')) return false;
      in_.remove_prefix(1);
      SkipOws();
      if (in_.empty()) return false;  // a trailing comma
    }
  }

 private:
  bool Peek(char c) const { return !in_.empty() && in_.front() == c; }
  void SkipSp() {
    while (Peek(' ')) in_.remove_prefix(1);
  }
  void SkipOws() {
    while (Peek(' ') || Peek('\t')) in_.remove_prefix(1);
  }

  bool Key(std::string_view* out) {
    if (in_.empty() || !(IsLcAlpha(in_.front()) || in_.front() == '*')) return false;
    size_t n = 1;
    while (n < in_.size()) {
      const char c = in_[n];
      if (!(IsLcAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '.' || c == '*')) break;
      ++n;
    }
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }

  bool Parameters() {
    while (Peek(';')) {
      in_.remove_prefix(1);
      SkipSp();
      std::string_view name;
      if (!Key(&name)) return false;
      if (Peek('=')) {
        in_.remove_prefix(1);
        std::optional<std::string> ignored;
        bool is_bytes = false;
        if (!BareItem(&ignored, &is_bytes)) return false;
      }
    }
    return true;
  }

  bool InnerList() {
    in_.remove_prefix(1);  // '('
    while (true) {
      SkipSp();
      if (Peek(')')) {
        in_.remove_prefix(1);
        return Parameters();
      }
      std::optional<std::string> ignored;
      bool is_bytes = false;
      if (!BareItem(&ignored, &is_bytes) || !Parameters()) return false;
      if (!Peek(' ') && !Peek(')')) return false;
    }
  }

  bool BareItem(std::optional<std::string>* bytes, bool* is_bytes) {
    if (in_.empty()) return false;
    const char c = in_.front();
    if (c == '-' || IsDigit(c)) return Number();
    if (c == '"') return String();
    if (c == ':') {
      *is_bytes = true;
      return ByteSequence(bytes);
    }
    if (c == '?') {
      if (in_.size() < 2 || (in_[1] != '0' && in_[1] != '1')) return false;
      in_.remove_prefix(2);
      return true;
    }
    if (IsAlpha(c) || c == '*') {
      size_t n = 1;
      while (n < in_.size() && IsTokenChar(in_[n])) ++n;
      in_.remove_prefix(n);
      return true;
    }
    return false;
  }

  bool Number() {
    size_t n = Peek('-') ? 1 : 0;
    const size_t digits_start = n;
    while (n < in_.size() && IsDigit(in_[n])) ++n;
    if (n == digits_start || n - digits_start > 15) return false;
    if (n < in_.size() && in_[n] == '.') {
      const size_t int_digits = n - digits_start;
      const size_t frac_start = ++n;
      while (n < in_.size() && IsDigit(in_[n])) ++n;
      if (int_digits > 12 || n == frac_start || n - frac_start > 3) return false;
    }
    in_.remove_prefix(n);
    return true;
  }

  bool String() {
    in_.remove_prefix(1);
    while (!in_.empty()) {
      const char c = in_.front();
      in_.remove_prefix(1);
      if (c == '"') return true;
      if (c == '\\') {
        if (!Peek('"') && !Peek('\\')) return false;
        in_.remove_prefix(1);
      } else if (c < 0x20 || c > 0x7e) {
        return false;
      }
    }
    return false;
  }

  bool ByteSequence(std::optional<std::string>* out) {
    const size_t end = in_.find(':', 1);
    if (end == std::string_view::npos) return false;
    auto decoded = Base64Decode(in_.substr(1, end - 1));
    if (!decoded) return false;
    *out = std::move(decoded);
    in_.remove_prefix(end + 1);
    return true;
  }

  std::string_view in_;
};

}  // namespace

std::string FormatReprDigest(const Sha256::Digest& digest) {
  return "sha-256=:" +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())) + ":";
}

Result<std::optional<std::string>> Sha256FromReprDigest(const std::vector<std::string_view>& field_lines) {
  std::string joined;
  for (std::string_view line : field_lines) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) continue;
    if (!joined.empty()) joined += ", ";
    joined += line;
  }
  // OWS around a field value is not part of it (RFC 9110 §5.5).
  std::string_view value = joined;
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::optional<std::string> bytes;
  bool other = false;
  if (!DictionaryParser(value).Parse("sha-256", &bytes, &other))
    return Status::InvalidArgument("malformed Repr-Digest (RFC 9530: sha-256=:<base64>:)");
  if (other)
    return Status::InvalidArgument("the Repr-Digest sha-256 value is not a byte sequence (:<base64>:)");
  if (!bytes) return std::optional<std::string>();
  if (bytes->size() != Sha256::kDigestSize)
    return Status::InvalidArgument("the Repr-Digest sha-256 value is not 32 bytes");
  return std::optional<std::string>(ToHex(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
}

}  // namespace dispotify
