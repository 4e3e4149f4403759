#include "node/auth/jwks.h"

#include <gtest/gtest.h>

#include "common/base64.h"
#include "tests/node/auth/test_signer.h"

namespace dispotify::auth {
namespace {

using testing::TestKey;
using web::json::value;

TEST(JwksTest, KeepsUsableKeysAndCountsTheRest) {
  const TestKey rsa = TestKey::Rsa();
  const TestKey ec = TestKey::EcP256();
  const TestKey small_rsa = TestKey::Rsa(1024);

  auto with = [](value jwk, const char* name, value v) {
    jwk[name] = std::move(v);
    return jwk;
  };
  auto without = [](value jwk, const char* name) {
    jwk.erase(name);
    return jwk;
  };
  std::string x = *Base64UrlDecode(ec.Jwk("").at("x").as_string());
  x[31] ^= 0x01;  // the point leaves the curve
  auto oct = value::object();
  oct["kty"] = value::string("oct");
  oct["k"] = value::string(Base64UrlEncode("secret"));

  const std::vector<value> bad = {
      with(rsa.Jwk("enc"), "use", value::string("enc")),
      with(rsa.Jwk("ops"), "key_ops", value::array({value::string("encrypt")})),
      with(rsa.Jwk("rs512"), "alg", value::string("RS512")),
      with(rsa.Jwk("bad-n"), "n", value::string("not*base64url")),
      without(rsa.Jwk("no-e"), "e"),
      small_rsa.Jwk("rsa-1024"),
      with(ec.Jwk("p384"), "crv", value::string("P-384")),
      with(ec.Jwk("short-x"), "x", value::string(Base64UrlEncode(x.substr(1)))),
      with(ec.Jwk("off-curve"), "x", value::string(Base64UrlEncode(x))),
      with(ec.Jwk("es256-as-rs"), "alg", value::string("RS256")),
      with(rsa.Jwk("kid-number"), "kid", value::number(5)),
      oct,
      value::string("not an object"),
  };
  std::vector<value> all = {rsa.Jwk("rsa-1"), with(ec.Jwk("ec-1"), "alg", value::string("ES256")),
                            with(rsa.Jwk("rsa-ops"), "key_ops", value::array({value::string("verify")})),
                            without(ec.Jwk("ec-no-use"), "use")};
  all.insert(all.end(), bad.begin(), bad.end());

  auto set = ParseJwks(testing::Jwks(all));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  std::vector<std::string> kids;
  for (const auto& key : set->keys()) kids.push_back(key.kid);
  EXPECT_EQ(kids, (std::vector<std::string>{"rsa-1", "ec-1", "rsa-ops", "ec-no-use"}));
  EXPECT_EQ(set->keys()[0].type, KeyType::kRsa);
  EXPECT_EQ(set->keys()[1].type, KeyType::kEcP256);
  EXPECT_EQ(set->skipped(), bad.size());
  EXPECT_TRUE(set->HasKid("ec-1"));
  EXPECT_FALSE(set->HasKid("off-curve"));
}

TEST(JwksTest, DocumentErrors) {
  for (const char* text : {"", "not json", "[]", "{}", "{\"keys\": {}}", "{\"keys\": [}"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(ParseJwks(text).status().code(), StatusCode::kInvalidArgument);
  }
  auto empty = ParseJwks("{\"keys\": []}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->keys().empty());
}

TEST(DiscoveryTest, IssuerMustMatchExactly) {
  const std::string doc =
      R"({"issuer": "https://id.example/realms/a", "jwks_uri": "https://id.example/certs", "other": 1})";
  auto d = ParseDiscovery(doc, "https://id.example/realms/a");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->issuer, "https://id.example/realms/a");
  EXPECT_EQ(d->jwks_uri, "https://id.example/certs");
  EXPECT_EQ(d->authorization_endpoint, "");  // optional: only the browser login needs them
  EXPECT_EQ(d->token_endpoint, "");
  auto full = ParseDiscovery(
      R"({"issuer": "https://id.example/realms/a", "jwks_uri": "https://id.example/certs",
          "authorization_endpoint": "https://id.example/auth", "token_endpoint": "https://id.example/token"})",
      "https://id.example/realms/a");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(full->authorization_endpoint, "https://id.example/auth");
  EXPECT_EQ(full->token_endpoint, "https://id.example/token");

  for (const char* configured :
       {"https://id.example/realms/a/", "https://id.example/realms/b", "http://id.example/realms/a"}) {
    SCOPED_TRACE(configured);
    EXPECT_EQ(ParseDiscovery(doc, configured).status().code(), StatusCode::kFailedPrecondition);
  }
  for (const char* bad : {"{}", R"({"issuer": "https://id.example/realms/a"})",
                          R"({"issuer": 1, "jwks_uri": "https://id.example/certs"})", "<html>"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseDiscovery(bad, "https://id.example/realms/a").status().code(),
              StatusCode::kInvalidArgument);
  }
}

TEST(DiscoveryTest, Url) {
  EXPECT_EQ(DiscoveryUrl("https://id.example"), "https://id.example/.well-known/openid-configuration");
  EXPECT_EQ(DiscoveryUrl("https://id.example/realms/a/"),
            "https://id.example/realms/a/.well-known/openid-configuration");
}

}  // namespace
}  // namespace dispotify::auth
