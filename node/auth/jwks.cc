#include "node/auth/jwks.h"

#include <cpprest/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <optional>

#include "common/base64.h"

namespace dispotify::auth {
namespace {

constexpr int kMinRsaBits = 2048;
constexpr size_t kP256CoordinateSize = 32;

using ParamBldPtr = OsslParamBldPtr;
using ParamPtr = OsslParamPtr;
using PkeyCtxPtr = EvpPkeyCtxPtr;

std::optional<std::string> StringField(const web::json::value& obj, const std::string& name) {
  if (!obj.has_field(name)) return std::nullopt;
  const auto& v = obj.at(name);
  if (!v.is_string()) return std::nullopt;
  return v.as_string();
}

// A base64url member that must be there and decode to at least one byte.
std::optional<std::string> BytesField(const web::json::value& obj, const std::string& name) {
  auto text = StringField(obj, name);
  if (!text) return std::nullopt;
  auto bytes = Base64UrlDecode(*text);
  if (!bytes || bytes->empty()) return std::nullopt;
  return bytes;
}

BnPtr ToBn(const std::string& bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()),
                         nullptr));
}

// Builds the key from `params` and runs OpenSSL's public-key check on it (for EC, that the point
// lies on the curve; for RSA, that n and e are plausible), so a key that would verify nothing, or
// invite invalid-curve tricks, never enters a set.
EvpPkeyPtr FromData(const char* type, OSSL_PARAM_BLD* bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return nullptr;
  EvpPkeyPtr key(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return key;
}

EvpPkeyPtr RsaKey(const web::json::value& jwk) {
  auto n = BytesField(jwk, "n");
  auto e = BytesField(jwk, "e");
  if (!n || !e) return nullptr;
  BnPtr bn_n = ToBn(*n);
  BnPtr bn_e = ToBn(*e);
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return nullptr;
  }
  EvpPkeyPtr key = FromData("RSA", bld.get());
  if (!key || EVP_PKEY_get_bits(key.get()) < kMinRsaBits) return nullptr;
  return key;
}

EvpPkeyPtr EcP256Key(const web::json::value& jwk) {
  if (StringField(jwk, "crv") != "P-256") return nullptr;
  auto x = BytesField(jwk, "x");
  auto y = BytesField(jwk, "y");
  // RFC 7518 §6.2.1.2: each coordinate is the full size of the field, leading zeros kept.
  if (!x || !y || x->size() != kP256CoordinateSize || y->size() != kP256CoordinateSize) return nullptr;
  const std::string point = '\x04' + *x + *y;  // SEC 1 §2.3.3, uncompressed
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return nullptr;
  }
  return FromData("EC", bld.get());
}

// The key a JWK describes, or nullopt when it is not one ValidateJwt may use.
std::optional<PublicKey> ToPublicKey(const web::json::value& jwk) {
  if (!jwk.is_object()) return std::nullopt;
  // RFC 7517 §4.2/§4.3: a key marked for another use, or whose operations leave out "verify", is
  // not for checking signatures.
  if (jwk.has_field("use") && StringField(jwk, "use") != "sig") return std::nullopt;
  if (jwk.has_field("key_ops")) {
    const auto& ops = jwk.at("key_ops");
    if (!ops.is_array()) return std::nullopt;
    bool verify = false;
    for (const auto& op : ops.as_array()) verify = verify || (op.is_string() && op.as_string() == "verify");
    if (!verify) return std::nullopt;
  }
  PublicKey key;
  if (jwk.has_field("kid")) {
    auto kid = StringField(jwk, "kid");
    if (!kid) return std::nullopt;
    key.kid = *kid;
  }
  const auto kty = StringField(jwk, "kty");
  const auto alg = StringField(jwk, "alg");
  if (jwk.has_field("alg") && !alg) return std::nullopt;
  // A key pinned to another algorithm (RFC 7517 §4.4) must not verify ours.
  if (kty == "RSA" && (!alg || *alg == "RS256")) {
    key.type = KeyType::kRsa;
    key.pkey = RsaKey(jwk);
  } else if (kty == "EC" && (!alg || *alg == "ES256")) {
    key.type = KeyType::kEcP256;
    key.pkey = EcP256Key(jwk);
  }
  if (!key.pkey) return std::nullopt;
  return key;
}

Result<web::json::value> ParseObject(std::string_view json, std::string_view what) {
  web::json::value v;
  try {
    v = web::json::value::parse(std::string(json));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string(what) + " is not JSON: " + e.what());
  }
  if (!v.is_object()) return Status::InvalidArgument(std::string(what) + " is not a JSON object");
  return v;
}

}  // namespace

bool KeySet::HasKid(std::string_view kid) const {
  for (const auto& key : keys_) {
    if (key.kid == kid) return true;
  }
  return false;
}

Result<KeySet> ParseJwks(std::string_view json) {
  auto doc = ParseObject(json, "the JWKS");
  if (!doc.ok()) return doc.status();
  try {
    if (!doc->has_field("keys") || !doc->at("keys").is_array())
      return Status::InvalidArgument("the JWKS has no \"keys\" array");
    std::vector<PublicKey> keys;
    size_t skipped = 0;
    for (const auto& jwk : doc->at("keys").as_array()) {
      auto key = ToPublicKey(jwk);
      if (key) {
        keys.push_back(std::move(*key));
      } else {
        ++skipped;
      }
    }
    return KeySet(std::move(keys), skipped);
  } catch (const web::json::json_exception& e) {
    return Status::InvalidArgument(std::string("unreadable JWKS: ") + e.what());
  }
}

Result<Discovery> ParseDiscovery(std::string_view json, std::string_view expected_issuer) {
  auto doc = ParseObject(json, "the discovery document");
  if (!doc.ok()) return doc.status();
  Discovery d;
  try {
    auto issuer = StringField(*doc, "issuer");
    auto jwks_uri = StringField(*doc, "jwks_uri");
    if (!issuer || !jwks_uri || jwks_uri->empty())
      return Status::InvalidArgument("the discovery document lacks \"issuer\" or \"jwks_uri\"");
    d.issuer = std::move(*issuer);
    d.jwks_uri = std::move(*jwks_uri);
    d.authorization_endpoint = StringField(*doc, "authorization_endpoint").value_or("");
    d.token_endpoint = StringField(*doc, "token_endpoint").value_or("");
  } catch (const web::json::json_exception& e) {
    return Status::InvalidArgument(std::string("unreadable discovery document: ") + e.what());
  }
  if (d.issuer != expected_issuer) {
    return Status::FailedPrecondition("the discovery document names issuer \"" + d.issuer + "\", not \"" +
                                      std::string(expected_issuer) + "\"");
  }
  return d;
}

std::string DiscoveryUrl(std::string_view issuer) {
  while (!issuer.empty() && issuer.back() == '/') issuer.remove_suffix(1);
  return std::string(issuer) + "/.well-known/openid-configuration";
}

}  // namespace dispotify::auth
