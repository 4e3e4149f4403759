#include "node/auth/jwt.h"

#include <cpprest/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <cmath>
#include <optional>

#include "common/base64.h"

namespace dispotify::auth {
namespace {

using web::json::value;

constexpr size_t kEs256SignatureSize = 64;  // R || S, 32 bytes each (RFC 7518 §3.4)

JwtFailure Fail(JwtError code, std::string detail) {
  return JwtFailure{code, std::move(detail)};
}

// Header and claim values come from whoever sent the token: only a short, printable excerpt may
// reach a log line.
std::string Excerpt(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 64)) out += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  if (text.size() > 64) out += "...";
  return out + "\"";
}

std::optional<value> ParseObject(const std::string& text) {
  try {
    value v = value::parse(text);
    if (v.is_object()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The member `name`, or nullptr.
const value* Member(const value& obj, const std::string& name) {
  const auto& fields = obj.as_object();
  auto it = fields.find(name);
  return it == fields.end() ? nullptr : &it->second;
}

// The DER form OpenSSL verifies, from JWS's fixed-size R || S.
std::optional<std::string> Es256SignatureToDer(const std::string& raw) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, kEs256SignatureSize / 2, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kEs256SignatureSize / 2, kEs256SignatureSize / 2, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0) return std::nullopt;
  std::string der(static_cast<size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != size) return std::nullopt;
  return der;
}

bool VerifySignature(const PublicKey& key, std::string_view signing_input, const std::string& signature) {
  std::string der;
  std::string_view sig = signature;
  if (key.type == KeyType::kEcP256) {
    auto converted = Es256SignatureToDer(signature);
    if (!converted) return false;
    der = std::move(*converted);
    sig = der;
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.pkey.get()) != 1)
    return false;
  if (key.type == KeyType::kRsa && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

// The key named by the header, or why there is none.
std::variant<const PublicKey*, JwtFailure> SelectKey(const value& header, KeyType type, const KeySet& keys) {
  const value* kid = Member(header, "kid");
  if (kid == nullptr) {
    const PublicKey* only = nullptr;
    int candidates = 0;
    for (const auto& key : keys.keys()) {
      if (key.type == type) {
        only = &key;
        ++candidates;
      }
    }
    if (candidates == 1) return only;
    return Fail(JwtError::kUnknownKey,
                "no kid, and " + std::to_string(candidates) + " keys of the algorithm's type to choose from");
  }
  if (!kid->is_string()) return Fail(JwtError::kMalformed, "kid is not a string");
  const std::string& name = kid->as_string();
  const PublicKey* other_type = nullptr;
  for (const auto& key : keys.keys()) {
    if (key.kid != name) continue;
    if (key.type == type) return &key;
    other_type = &key;
  }
  if (other_type != nullptr)
    return Fail(JwtError::kKeyMismatch, "key " + Excerpt(name) + " is not for this alg");
  return Fail(JwtError::kUnknownKey, "no key with kid " + Excerpt(name));
}

// A NumericDate (RFC 7519 §2): seconds, possibly fractional, truncated here.
std::optional<int64_t> NumericDate(const value& v) {
  if (!v.is_number()) return std::nullopt;
  const auto& n = v.as_number();
  if (n.is_int64()) return n.to_int64();
  if (n.is_integral()) return std::nullopt;  // beyond int64
  const double d = n.to_double();
  if (!std::isfinite(d) || std::fabs(d) > 9.0e18) return std::nullopt;
  return static_cast<int64_t>(std::floor(d));
}

std::optional<JwtFailure> CheckAudience(const value& aud, const std::string& audience) {
  if (aud.is_string()) {
    if (aud.as_string() == audience) return std::nullopt;
  } else if (aud.is_array()) {
    for (const auto& a : aud.as_array()) {
      if (!a.is_string()) return Fail(JwtError::kMalformed, "aud holds a non-string");
      if (a.as_string() == audience) return std::nullopt;
    }
  } else {
    return Fail(JwtError::kMalformed, "aud is neither a string nor an array");
  }
  return Fail(JwtError::kWrongAudience, "aud does not contain " + Excerpt(audience));
}

std::optional<JwtFailure> CheckTimes(const value& payload, const JwtPolicy& policy, int64_t now_s,
                                     Claims* out) {
  const value* exp = Member(payload, "exp");
  if (exp == nullptr) return Fail(JwtError::kMissingClaim, "no exp");
  auto exp_s = NumericDate(*exp);
  if (!exp_s) return Fail(JwtError::kMalformed, "exp is not a NumericDate");
  // Written with now on the left so that a huge exp or nbf cannot overflow.
  if (now_s - policy.leeway_s >= *exp_s)
    return Fail(JwtError::kExpired,
                "expired at " + std::to_string(*exp_s) + ", now " + std::to_string(now_s));
  for (const char* name : {"nbf", "iat"}) {
    const value* v = Member(payload, name);
    if (v == nullptr) continue;
    auto t = NumericDate(*v);
    if (!t) return Fail(JwtError::kMalformed, std::string(name) + " is not a NumericDate");
    if (now_s + policy.leeway_s < *t) {
      return Fail(JwtError::kNotYetValid,
                  std::string(name) + " " + std::to_string(*t) + " is after now " + std::to_string(now_s));
    }
  }
  out->expires_at = *exp_s;
  return std::nullopt;
}

std::optional<JwtFailure> ExtractRoles(const value& payload, const std::string& path, Claims* out) {
  const value* v = &payload;
  for (size_t start = 0; v != nullptr;) {
    const size_t dot = path.find('.', start);
    if (!v->is_object()) return std::nullopt;
    v = Member(*v, path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    const std::string& text = v->as_string();
    for (size_t start = 0; start <= text.size();) {
      size_t space = text.find(' ', start);
      if (space == std::string::npos) space = text.size();
      if (space > start) out->roles.push_back(text.substr(start, space - start));
      start = space + 1;
    }
    return std::nullopt;
  }
  if (!v->is_array()) return Fail(JwtError::kMalformed, "the roles claim is neither an array nor a string");
  for (const auto& role : v->as_array()) {
    if (!role.is_string()) return Fail(JwtError::kMalformed, "the roles claim holds a non-string");
    out->roles.push_back(role.as_string());
  }
  return std::nullopt;
}

JwtResult CheckClaims(const value& payload, const JwtPolicy& policy, int64_t now_s) {
  Claims claims;
  const value* iss = Member(payload, "iss");
  if (iss == nullptr) return Fail(JwtError::kMissingClaim, "no iss");
  if (!iss->is_string()) return Fail(JwtError::kMalformed, "iss is not a string");
  if (iss->as_string() != policy.issuer)
    return Fail(JwtError::kWrongIssuer, "iss " + Excerpt(iss->as_string()));
  claims.issuer = iss->as_string();

  const value* aud = Member(payload, "aud");
  if (aud == nullptr) return Fail(JwtError::kMissingClaim, "no aud");
  if (auto failure = CheckAudience(*aud, policy.audience)) return std::move(*failure);
  if (auto failure = CheckTimes(payload, policy, now_s, &claims)) return std::move(*failure);

  const value* sub = Member(payload, "sub");
  if (sub == nullptr) return Fail(JwtError::kMissingClaim, "no sub");
  if (!sub->is_string()) return Fail(JwtError::kMalformed, "sub is not a string");
  if (sub->as_string().empty()) return Fail(JwtError::kMissingClaim, "empty sub");
  claims.subject = sub->as_string();

  if (auto failure = ExtractRoles(payload, policy.roles_claim, &claims)) return std::move(*failure);
  return claims;
}

JwtResult Validate(std::string_view token, const KeySet& keys, const JwtPolicy& policy, int64_t now_s) {
  if (token.size() > kMaxTokenSize) return Fail(JwtError::kMalformed, "token over the size limit");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return Fail(JwtError::kMalformed, "not three dot-separated parts");
  auto header_json = Base64UrlDecode(token.substr(0, dot1));
  auto payload_json = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header_json || !payload_json || !signature)
    return Fail(JwtError::kMalformed, "a part is not base64url");

  auto header = ParseObject(*header_json);
  if (!header) return Fail(JwtError::kMalformed, "the header is not a JSON object");
  const value* alg = Member(*header, "alg");
  if (alg == nullptr || !alg->is_string()) return Fail(JwtError::kMalformed, "no alg");
  KeyType type;
  if (alg->as_string() == "RS256") {
    type = KeyType::kRsa;
  } else if (alg->as_string() == "ES256") {
    type = KeyType::kEcP256;
  } else {
    return Fail(JwtError::kUnsupportedAlg, "alg " + Excerpt(alg->as_string()));
  }
  // RFC 7515 §4.1.11: extensions listed in crit must be understood, and we understand none.
  if (Member(*header, "crit") != nullptr) return Fail(JwtError::kMalformed, "crit header");

  auto selected = SelectKey(*header, type, keys);
  if (auto* failure = std::get_if<JwtFailure>(&selected)) return std::move(*failure);
  const PublicKey& key = *std::get<const PublicKey*>(selected);
  if (type == KeyType::kEcP256 && signature->size() != kEs256SignatureSize)
    return Fail(JwtError::kBadSignature,
                "ES256 signature of " + std::to_string(signature->size()) + " bytes");
  if (!VerifySignature(key, token.substr(0, dot2), *signature))
    return Fail(JwtError::kBadSignature, "signature does not verify with key " + Excerpt(key.kid));

  auto payload = ParseObject(*payload_json);
  if (!payload) return Fail(JwtError::kMalformed, "the payload is not a JSON object");
  return CheckClaims(*payload, policy, now_s);
}

}  // namespace

std::string_view JwtErrorName(JwtError code) {
  switch (code) {
    case JwtError::kMalformed: return "malformed";
    case JwtError::kUnsupportedAlg: return "unsupported_alg";
    case JwtError::kKeyMismatch: return "key_mismatch";
    case JwtError::kUnknownKey: return "unknown_key";
    case JwtError::kBadSignature: return "bad_signature";
    case JwtError::kExpired: return "expired";
    case JwtError::kNotYetValid: return "not_yet_valid";
    case JwtError::kWrongIssuer: return "wrong_issuer";
    case JwtError::kWrongAudience: return "wrong_audience";
    case JwtError::kMissingClaim: return "missing_claim";
    case JwtError::kKeysUnavailable: return "keys_unavailable";
  }
  return "unknown";
}

Status JwtFailure::ToStatus() const {
  std::string message = "jwt " + std::string(JwtErrorName(code)) + ": " + detail;
  if (code == JwtError::kKeysUnavailable) return Status::Unavailable(std::move(message));
  return Status::InvalidArgument(std::move(message));
}

JwtResult ValidateJwt(std::string_view token, const KeySet& keys, const JwtPolicy& policy, int64_t now_s) {
  // cpprest reports type errors by exception; the checks above should leave none, and an escaped
  // one must refuse the token rather than take the request down.
  try {
    return Validate(token, keys, policy, now_s);
  } catch (const std::exception& e) {
    return Fail(JwtError::kMalformed, std::string("unreadable token: ") + e.what());
  }
}

}  // namespace dispotify::auth
