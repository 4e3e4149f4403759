#include "common/audit/entry.h"

#include <algorithm>
#include <cstring>

#include "common/encoding.h"
#include "common/sha256.h"
#include "common/utf8.h"

namespace dispotify::audit {

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kUpload: return "upload";
    case Action::kDelete: return "delete";
    case Action::kLogin: return "login";
    case Action::kLoginFailed: return "login_failed";
    case Action::kLogout: return "logout";
    case Action::kTokenCreated: return "token_created";
    case Action::kTokenRevoked: return "token_revoked";
    case Action::kUserCreated: return "user_created";
    case Action::kUserDeleted: return "user_deleted";
    case Action::kUserDisabled: return "user_disabled";
    case Action::kPasswordChanged: return "password_changed";
    case Action::kRoleChanged: return "role_changed";
    case Action::kAdmin: return "admin";
    case Action::kDenied: return "denied";
    case Action::kKeyRotated: return "key_rotated";
  }
  return "unknown";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kDenied: return "denied";
    case Outcome::kError: return "error";
  }
  return "unknown";
}

namespace {

struct FieldRule {
  std::string_view name;
  std::string Entry::*field;
  size_t max_bytes;
};

// In encoding order.
constexpr FieldRule kStringFields[] = {
    {"actor", &Entry::actor, kMaxActorBytes},
    {"client", &Entry::client, kMaxClientBytes},
    {"target", &Entry::target, kMaxTargetBytes},
    {"code", &Entry::code, kMaxCodeBytes},
    {"request_id", &Entry::request_id, kMaxRequestIdBytes},
    {"detail", &Entry::detail, kMaxDetailBytes},
};

bool KnownAction(uint8_t v) {
  return v >= 1 && v <= kMaxAction;
}
bool KnownOutcome(uint8_t v) {
  return v >= 1 && v <= kMaxOutcome;
}

}  // namespace

Status Validate(const Entry& entry) {
  if (!KnownAction(static_cast<uint8_t>(entry.action))) {
    return Status::InvalidArgument("audit entry: unknown action " +
                                   std::to_string(static_cast<int>(entry.action)));
  }
  if (!KnownOutcome(static_cast<uint8_t>(entry.outcome))) {
    return Status::InvalidArgument("audit entry: unknown outcome " +
                                   std::to_string(static_cast<int>(entry.outcome)));
  }
  if (entry.actor.empty()) return Status::InvalidArgument("audit entry: empty actor");
  for (const auto& rule : kStringFields) {
    const std::string& value = entry.*rule.field;
    if (value.size() > rule.max_bytes) {
      return Status::InvalidArgument("audit entry: " + std::string(rule.name) + " is " +
                                     std::to_string(value.size()) + " bytes, over the limit of " +
                                     std::to_string(rule.max_bytes));
    }
    if (!IsValidUtf8(value)) {
      return Status::InvalidArgument("audit entry: " + std::string(rule.name) + " is not valid UTF-8");
    }
  }
  return Status::Ok();
}

Result<std::string> EncodeForHash(const Entry& entry) {
  DISPOTIFY_RETURN_IF_ERROR(Validate(entry));
  std::string out;
  out.reserve(128);
  encoding::PutU8(&out, kEntryVersion);
  encoding::PutU64(&out, entry.seq);
  encoding::PutU64(&out, static_cast<uint64_t>(entry.time_ms));
  encoding::PutU8(&out, static_cast<uint8_t>(entry.action));
  encoding::PutU8(&out, static_cast<uint8_t>(entry.outcome));
  for (const auto& rule : kStringFields) encoding::PutString(&out, entry.*rule.field);
  out.append(reinterpret_cast<const char*>(entry.prev_hash.data()), kHashSize);
  return out;
}

Result<std::string> Encode(const Entry& entry) {
  auto out = EncodeForHash(entry);
  if (!out.ok()) return out.status();
  out->append(reinterpret_cast<const char*>(entry.hash.data()), kHashSize);
  return out;
}

Result<Entry> Decode(std::string_view bytes) {
  auto corrupt = [](std::string what) { return Status::Corruption("audit entry: " + std::move(what)); };
  if (bytes.size() > kMaxEntryBytes) return corrupt("longer than any valid entry");
  encoding::Decoder in(bytes);
  uint8_t version = 0;
  if (!in.GetU8(&version)) return corrupt("empty");
  if (version != kEntryVersion) return corrupt("unknown version " + std::to_string(version));
  Entry entry;
  uint64_t time = 0;
  uint8_t action = 0;
  uint8_t outcome = 0;
  if (!in.GetU64(&entry.seq) || !in.GetU64(&time) || !in.GetU8(&action) || !in.GetU8(&outcome)) {
    return corrupt("truncated");
  }
  if (!KnownAction(action)) return corrupt("unknown action " + std::to_string(action));
  if (!KnownOutcome(outcome)) return corrupt("unknown outcome " + std::to_string(outcome));
  entry.time_ms = static_cast<int64_t>(time);
  entry.action = static_cast<Action>(action);
  entry.outcome = static_cast<Outcome>(outcome);
  for (const auto& rule : kStringFields) {
    // Check the length before copying, so a corrupt length cannot make us allocate much.
    uint32_t n = 0;
    std::string_view value;
    if (!in.GetU32(&n)) return corrupt("truncated");
    if (n > rule.max_bytes) return corrupt(std::string(rule.name) + " over its limit");
    if (!in.GetBytes(n, &value)) return corrupt("truncated");
    (entry.*rule.field).assign(value);
  }
  std::string_view prev;
  std::string_view hash;
  if (!in.GetBytes(kHashSize, &prev) || !in.GetBytes(kHashSize, &hash)) return corrupt("truncated");
  std::memcpy(entry.prev_hash.data(), prev.data(), kHashSize);
  std::memcpy(entry.hash.data(), hash.data(), kHashSize);
  if (in.remaining() != 0) return corrupt("trailing bytes");
  if (Status st = Validate(entry); !st.ok()) return corrupt(st.message());
  return entry;
}

Result<Hash> ComputeHash(const Entry& entry) {
  auto bytes = EncodeForHash(entry);
  if (!bytes.ok()) return bytes.status();
  return Sha256Digest(*bytes);
}

// ---------------------------------------------------------------------------------------------
// Redaction. A hand-written scanner rather than std::regex: the input is attacker-controlled and
// libstdc++'s regex recurses per character, so a long request line could exhaust the stack.

namespace {

constexpr std::string_view kMask = "[REDACTED]";
constexpr size_t kMinTokenChars = 20;

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t';
}

// Characters of an RFC 6750 b64token and of base64.
bool IsCredentialChar(char c) {
  return IsWordChar(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

size_t WordEnd(std::string_view s, size_t i) {
  while (i < s.size() && IsWordChar(s[i])) ++i;
  return i;
}

bool NamesSecret(std::string_view key) {
  static constexpr std::string_view kSecretWords[] = {
      "password", "passwd",        "pwd",    "secret",  "token",      "api_key",     "apikey",
      "api-key",  "authorization", "cookie", "session", "credential", "private_key", "private-key",
  };
  const std::string lower = ToLower(key);
  return std::any_of(std::begin(kSecretWords), std::end(kSecretWords),
                     [&](std::string_view w) { return lower.find(w) != std::string::npos; });
}

bool IsAuthScheme(std::string_view word) {
  const std::string lower = ToLower(word);
  return lower == "bearer" || lower == "basic" || lower == "digest" || lower == "negotiate";
}

// A JWT (or JWE) starting at `i`: "eyJ" base64url, then one or more '.'-separated base64url parts
// (the last may be empty: an unsigned token still carries its claims). Returns its length, or 0.
size_t JwtLength(std::string_view s, size_t i) {
  if (s.substr(i, 3) != "eyJ") return 0;
  size_t end = WordEnd(s, i);
  size_t parts = 1;
  while (end < s.size() && s[end] == '.') {
    end = WordEnd(s, end + 1);
    ++parts;
  }
  return parts >= 2 ? end - i : 0;
}

// After an auth scheme word ending at `i`: the spaces, then the credential. Returns the
// credential's [begin, end), or begin == end when there is none.
std::pair<size_t, size_t> CredentialAfterScheme(std::string_view s, size_t i) {
  size_t b = i;
  while (b < s.size() && IsSpace(s[b])) ++b;
  if (b == i) return {i, i};
  size_t e = b;
  while (e < s.size() && IsCredentialChar(s[e])) ++e;
  return {b, e};
}

class Redactor {
 public:
  explicit Redactor(std::string_view in) : in_(in) { out_.reserve(in.size()); }

  std::string Run() && {
    while (i_ < in_.size()) {
      if (IsWordChar(in_[i_])) {
        Word();
      } else if (in_.substr(i_, 3) == "://") {
        UrlUserInfo();
      } else {
        out_.push_back(in_[i_++]);
      }
    }
    return std::move(out_);
  }

 private:
  void Word() {
    const size_t end = WordEnd(in_, i_);
    const std::string_view word = in_.substr(i_, end - i_);
    // A JWT, even glued to a word before it. Every "eyJ" of the word shares the word's end, so
    // the first one decides (and the scan stays linear in the word).
    if (const size_t at = word.find("eyJ"); at != std::string_view::npos) {
      if (const size_t jwt = JwtLength(in_, i_ + at); jwt > 0) {
        out_.append(word.substr(0, at));
        out_.append("[REDACTED-JWT]");
        i_ += at + jwt;
        return;
      }
    }
    // An API token anywhere in a word: a prefix glued to it must not hide it.
    if (const size_t at = word.find("dsp_");
        at != std::string_view::npos && word.size() - at - 4 >= kMinTokenChars) {
      out_.append(word.substr(0, at));
      out_.append("dsp_");
      out_.append(kMask);
      i_ = end;
      return;
    }
    out_.append(word);
    i_ = end;
    if (IsAuthScheme(word)) {
      MaskSchemeCredential();
    } else if (NamesSecret(word)) {
      MaskValue();
    }
  }

  // i_ is just past a scheme word.
  bool MaskSchemeCredential() {
    auto [b, e] = CredentialAfterScheme(in_, i_);
    if (b == e) return false;
    out_.append(in_.substr(i_, b - i_));
    out_.append(kMask);
    i_ = e;
    return true;
  }

  // i_ is just past a key naming a secret: `key=value`, `key: value`, `"key": "value"`.
  void MaskValue() {
    size_t j = i_;
    if (j < in_.size() && (in_[j] == '"' || in_[j] == '\'')) ++j;  // a JSON key's closing quote
    while (j < in_.size() && IsSpace(in_[j])) ++j;
    if (j >= in_.size() || (in_[j] != '=' && in_[j] != ':')) return;
    const bool header_style = in_[j] == ':';
    ++j;
    while (j < in_.size() && IsSpace(in_[j])) ++j;
    out_.append(in_.substr(i_, j - i_));
    i_ = j;
    if (i_ >= in_.size()) return;
    const char quote = in_[i_];
    if (quote == '"' || quote == '\'') {
      // Skips escaped quotes, or the rest of a JSON string would leak after the mask.
      size_t close = i_ + 1;
      while (close < in_.size() && in_[close] != quote) close += in_[close] == '\\' ? 2 : 1;
      close = std::min(close, in_.size());
      out_.push_back(quote);
      out_.append(kMask);
      if (close < in_.size()) out_.push_back(quote);
      i_ = std::min(close + 1, in_.size());
      return;
    }
    // "Authorization: Bearer x": keep the scheme, mask what follows it.
    const size_t word_end = WordEnd(in_, i_);
    if (word_end > i_ && IsAuthScheme(in_.substr(i_, word_end - i_))) {
      out_.append(in_.substr(i_, word_end - i_));
      i_ = word_end;
      if (MaskSchemeCredential()) return;
    }
    // After '=' (query strings, forms) a value ends at a separator; after ':' (headers, YAML) it
    // may hold spaces ("password: correct horse battery"), so it runs to the end of the line.
    auto ends_value = [&](char c) {
      if (c == '\r' || c == '\n') return true;
      if (header_style) return false;
      return IsSpace(c) || c == '&' || c == ',' || c == ';' || c == '}' || c == ')' || c == ']';
    };
    size_t e = i_;
    while (e < in_.size() && !ends_value(in_[e])) ++e;
    if (e > i_) out_.append(kMask);
    i_ = e;
  }

  // i_ is at "://": mask the password in "user:password@" before the host.
  void UrlUserInfo() {
    out_.append("://");
    i_ += 3;
    size_t e = i_;
    while (e < in_.size() && in_[e] != '@' && in_[e] != '/' && in_[e] != '?' && in_[e] != '#' &&
           !IsSpace(in_[e]) && in_[e] != '\n' && in_[e] != '\r') {
      ++e;
    }
    if (e >= in_.size() || in_[e] != '@') return;
    const std::string_view userinfo = in_.substr(i_, e - i_);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) return;
    out_.append(userinfo.substr(0, colon + 1));
    out_.append(kMask);
    i_ = e;
  }

  std::string_view in_;
  std::string out_;
  size_t i_ = 0;
};

// Length of the UTF-8 sequence starting at s[i] if it is valid, else 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  if (c < 0x80) {
    n = 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  return IsValidUtf8(s.substr(i, n)) ? n : 0;
}

}  // namespace

std::string Redact(std::string_view text) {
  return Redactor(text).Run();
}

std::string Sanitize(std::string_view text, size_t max_bytes) {
  const std::string redacted = Redact(text);
  std::string clean;
  clean.reserve(redacted.size());
  for (size_t i = 0; i < redacted.size();) {
    const size_t n = Utf8SequenceLength(redacted, i);
    if (n == 0) {
      clean.push_back('?');
      ++i;
      continue;
    }
    const auto c = static_cast<unsigned char>(redacted[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F)) {
      clean.push_back(' ');
    } else {
      clean.append(redacted, i, n);
    }
    i += n;
  }
  if (clean.size() <= max_bytes) return clean;
  constexpr std::string_view kCut = "...";
  if (max_bytes < kCut.size()) return std::string(max_bytes, '.');
  size_t keep = max_bytes - kCut.size();
  // Back up to a character boundary: never split a multi-byte sequence.
  while (keep > 0 && (static_cast<unsigned char>(clean[keep]) & 0xC0) == 0x80) --keep;
  clean.resize(keep);
  clean.append(kCut);
  return clean;
}

}  // namespace dispotify::audit
