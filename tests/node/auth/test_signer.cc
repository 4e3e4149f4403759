#include "tests/node/auth/test_signer.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <stdexcept>

#include "common/base64.h"

namespace dispotify::auth::testing {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("OpenSSL: ") + what);
}

std::string BnParam(EVP_PKEY* key, const char* name, int pad_to = 0) {
  BIGNUM* bn = nullptr;
  Require(EVP_PKEY_get_bn_param(key, name, &bn) == 1, name);
  std::string out(static_cast<size_t>(pad_to > 0 ? pad_to : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

}  // namespace

TestKey TestKey::Rsa(int bits) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  Require(key != nullptr, "RSA keygen");
  return TestKey(KeyType::kRsa, std::move(key));
}

TestKey TestKey::EcP256() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Require(key != nullptr, "EC keygen");
  return TestKey(KeyType::kEcP256, std::move(key));
}

web::json::value TestKey::Jwk(const std::string& kid) const {
  auto jwk = web::json::value::object();
  if (!kid.empty()) jwk["kid"] = web::json::value::string(kid);
  jwk["use"] = web::json::value::string("sig");
  if (type_ == KeyType::kRsa) {
    jwk["kty"] = web::json::value::string("RSA");
    jwk["n"] = web::json::value::string(Base64UrlEncode(BnParam(key_.get(), OSSL_PKEY_PARAM_RSA_N)));
    jwk["e"] = web::json::value::string(Base64UrlEncode(BnParam(key_.get(), OSSL_PKEY_PARAM_RSA_E)));
  } else {
    jwk["kty"] = web::json::value::string("EC");
    jwk["crv"] = web::json::value::string("P-256");
    jwk["x"] = web::json::value::string(Base64UrlEncode(BnParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)));
    jwk["y"] = web::json::value::string(Base64UrlEncode(BnParam(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)));
  }
  return jwk;
}

std::string TestKey::Sign(std::string_view input, bool der) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Require(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_.get()) == 1, "DigestSignInit");
  size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  Require(EVP_DigestSign(ctx, nullptr, &size, data, input.size()) == 1, "DigestSign size");
  std::string sig(size, '\0');
  Require(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &size, data, input.size()) == 1,
          "DigestSign");
  EVP_MD_CTX_free(ctx);
  sig.resize(size);
  if (type_ == KeyType::kRsa || der) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  Require(ecdsa != nullptr, "d2i_ECDSA_SIG");
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ecdsa);
  return raw;
}

std::string TestKey::PublicPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  Require(PEM_write_bio_PUBKEY(bio, key_.get()) == 1, "PEM_write_bio_PUBKEY");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string Jwks(const std::vector<web::json::value>& jwks) {
  auto doc = web::json::value::object();
  doc["keys"] = web::json::value::array(jwks);
  return doc.serialize();
}

std::string SigningInput(const web::json::value& header, const web::json::value& payload) {
  return Base64UrlEncode(header.serialize()) + "." + Base64UrlEncode(payload.serialize());
}

std::string SignedToken(const web::json::value& header, const web::json::value& payload, const TestKey& key) {
  const std::string input = SigningInput(header, payload);
  return input + "." + Base64UrlEncode(key.Sign(input));
}

std::string Hs256Token(const web::json::value& header, const web::json::value& payload,
                       std::string_view secret) {
  const std::string input = SigningInput(header, payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Require(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
               reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size) != nullptr,
          "HMAC");
  return input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), size));
}

}  // namespace dispotify::auth::testing
