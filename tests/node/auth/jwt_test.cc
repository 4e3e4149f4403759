#include "node/auth/jwt.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "common/base64.h"
#include "tests/node/auth/test_signer.h"

namespace dispotify::auth {
namespace {

using testing::TestKey;
using web::json::value;

constexpr int64_t kNow = 1'800'000'000;
constexpr const char* kIssuer = "https://issuer.example/realms/dispotify";

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new TestKey(TestKey::Rsa());
    ec_ = new TestKey(TestKey::EcP256());
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
  }

  void SetUp() override {
    auto set = ParseJwks(testing::Jwks({rsa_->Jwk("rsa-1"), ec_->Jwk("ec-1")}));
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    keys_ = std::move(set).value();
    ASSERT_EQ(keys_.keys().size(), 2u);
    policy_.issuer = kIssuer;
    policy_.audience = "dispotify";
  }

  static value Header(const char* alg, const char* kid) {
    auto h = value::object();
    h["alg"] = value::string(alg);
    h["typ"] = value::string("JWT");
    if (kid != nullptr) h["kid"] = value::string(kid);
    return h;
  }
  static value Payload() {
    auto p = value::object();
    p["iss"] = value::string(kIssuer);
    p["aud"] = value::string("dispotify");
    p["sub"] = value::string("user-42");
    p["exp"] = value::number(kNow + 300);
    p["iat"] = value::number(kNow - 10);
    p["roles"] = value::array({value::string("listener"), value::string("uploader")});
    return p;
  }

  JwtResult Validate(const std::string& token) const { return ValidateJwt(token, keys_, policy_, kNow); }

  static TestKey* rsa_;
  static TestKey* ec_;
  KeySet keys_;
  JwtPolicy policy_;
};

TestKey* JwtTest::rsa_ = nullptr;
TestKey* JwtTest::ec_ = nullptr;

#define EXPECT_JWT_ERROR(result, expected)                                             \
  do {                                                                                 \
    const JwtResult& r_ = (result);                                                    \
    ASSERT_FALSE(r_.ok()) << "accepted";                                               \
    EXPECT_EQ(JwtErrorName(r_.code()), JwtErrorName(expected)) << r_.failure().detail; \
  } while (0)

TEST_F(JwtTest, AcceptsRs256AndEs256) {
  for (const auto& [alg, kid, key] : {std::tuple{"RS256", "rsa-1", rsa_}, std::tuple{"ES256", "ec-1", ec_}}) {
    SCOPED_TRACE(alg);
    auto result = Validate(testing::SignedToken(Header(alg, kid), Payload(), *key));
    ASSERT_TRUE(result.ok()) << result.failure().detail;
    EXPECT_EQ(result->subject, "user-42");
    EXPECT_EQ(result->issuer, kIssuer);
    EXPECT_EQ(result->expires_at, kNow + 300);
    EXPECT_EQ(result->roles, (std::vector<std::string>{"listener", "uploader"}));
  }
}

TEST_F(JwtTest, WithoutKidTheOnlyKeyOfTheTypeIsUsed) {
  EXPECT_TRUE(Validate(testing::SignedToken(Header("RS256", nullptr), Payload(), *rsa_)).ok());
  EXPECT_TRUE(Validate(testing::SignedToken(Header("ES256", nullptr), Payload(), *ec_)).ok());
  // Two RSA keys: no kid cannot choose.
  TestKey other = TestKey::Rsa();
  keys_ = std::move(ParseJwks(testing::Jwks({rsa_->Jwk("rsa-1"), other.Jwk("rsa-2")}))).value();
  EXPECT_JWT_ERROR(Validate(testing::SignedToken(Header("RS256", nullptr), Payload(), *rsa_)),
                   JwtError::kUnknownKey);
  EXPECT_TRUE(Validate(testing::SignedToken(Header("RS256", "rsa-2"), Payload(), other)).ok());
}

// One row per way a token is refused on its header or claims.
struct Case {
  const char* name;
  std::function<void(value& header, value& payload)> spoil;
  JwtError expected;  // ignored when accepted
  bool accepted = false;
};

TEST_F(JwtTest, HeaderAndClaimTable) {
  const int64_t leeway = policy_.leeway_s;
  const std::vector<Case> cases = {
      {"unknown kid", [](value& h, value&) { h["kid"] = value::string("rotated-away"); },
       JwtError::kUnknownKey},
      {"kid not a string", [](value& h, value&) { h["kid"] = value::number(1); }, JwtError::kMalformed},
      {"crit header", [](value& h, value&) { h["crit"] = value::array({value::string("exp")}); },
       JwtError::kMalformed},
      {"no alg", [](value& h, value&) { h.erase("alg"); }, JwtError::kMalformed},
      {"alg RS512", [](value& h, value&) { h["alg"] = value::string("RS512"); }, JwtError::kUnsupportedAlg},
      {"alg PS256", [](value& h, value&) { h["alg"] = value::string("PS256"); }, JwtError::kUnsupportedAlg},
      {"alg rs256 (case)", [](value& h, value&) { h["alg"] = value::string("rs256"); },
       JwtError::kUnsupportedAlg},
      {"expired just past the leeway", [=](value&, value& p) { p["exp"] = value::number(kNow - leeway); },
       JwtError::kExpired},
      {"expired within the leeway", [=](value&, value& p) { p["exp"] = value::number(kNow - leeway + 1); },
       JwtError::kExpired, true},
      {"exp fractional", [](value&, value& p) { p["exp"] = value::number(kNow + 0.5); }, JwtError::kExpired,
       true},
      {"exp a string", [](value&, value& p) { p["exp"] = value::string("tomorrow"); }, JwtError::kMalformed},
      {"nbf in the future", [=](value&, value& p) { p["nbf"] = value::number(kNow + leeway + 1); },
       JwtError::kNotYetValid},
      {"nbf within the leeway", [=](value&, value& p) { p["nbf"] = value::number(kNow + leeway); },
       JwtError::kNotYetValid, true},
      {"iat in the future", [=](value&, value& p) { p["iat"] = value::number(kNow + leeway + 1); },
       JwtError::kNotYetValid},
      {"wrong iss", [](value&, value& p) { p["iss"] = value::string("https://evil.example"); },
       JwtError::kWrongIssuer},
      {"iss with a trailing slash",
       [](value&, value& p) { p["iss"] = value::string(std::string(kIssuer) + "/"); },
       JwtError::kWrongIssuer},
      {"aud array containing ours",
       [](value&, value& p) {
         p["aud"] = value::array({value::string("account"), value::string("dispotify")});
       },
       JwtError::kWrongAudience, true},
      {"wrong aud string", [](value&, value& p) { p["aud"] = value::string("account"); },
       JwtError::kWrongAudience},
      {"wrong aud array", [](value&, value& p) { p["aud"] = value::array({value::string("account")}); },
       JwtError::kWrongAudience},
      {"aud a number", [](value&, value& p) { p["aud"] = value::number(7); }, JwtError::kMalformed},
      {"missing iss", [](value&, value& p) { p.erase("iss"); }, JwtError::kMissingClaim},
      {"missing aud", [](value&, value& p) { p.erase("aud"); }, JwtError::kMissingClaim},
      {"missing exp", [](value&, value& p) { p.erase("exp"); }, JwtError::kMissingClaim},
      {"missing sub", [](value&, value& p) { p.erase("sub"); }, JwtError::kMissingClaim},
      {"empty sub", [](value&, value& p) { p["sub"] = value::string(""); }, JwtError::kMissingClaim},
      {"roles a number", [](value&, value& p) { p["roles"] = value::number(3); }, JwtError::kMalformed},
      {"no roles", [](value&, value& p) { p.erase("roles"); }, JwtError::kMalformed, true},
  };
  for (const char* alg : {"RS256", "ES256"}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(alg) + ": " + c.name);
      value header = Header(alg, alg[0] == 'R' ? "rsa-1" : "ec-1");
      value payload = Payload();
      c.spoil(header, payload);
      auto result = Validate(testing::SignedToken(header, payload, alg[0] == 'R' ? *rsa_ : *ec_));
      if (c.accepted) {
        EXPECT_TRUE(result.ok()) << result.failure().detail;
      } else {
        EXPECT_JWT_ERROR(result, c.expected);
      }
    }
  }
}

TEST_F(JwtTest, AlgNoneIsRefused) {
  value header = value::object();
  header["alg"] = value::string("none");
  EXPECT_JWT_ERROR(Validate(testing::SigningInput(header, Payload()) + "."), JwtError::kUnsupportedAlg);
  header["kid"] = value::string("rsa-1");
  EXPECT_JWT_ERROR(Validate(testing::SigningInput(header, Payload()) + "."), JwtError::kUnsupportedAlg);
}

// The classic confusion: the attacker signs with HMAC, using the issuer's public key (which anyone
// can read) as the secret, hoping the verifier feeds that key to HMAC.
TEST_F(JwtTest, HmacWithThePublicKeyAsSecretIsRefused) {
  for (const char* alg : {"HS256", "HS384", "HS512"}) {
    value header = Header(alg, "rsa-1");
    EXPECT_JWT_ERROR(Validate(testing::Hs256Token(header, Payload(), rsa_->PublicPem())),
                     JwtError::kUnsupportedAlg);
    header.erase("kid");
    EXPECT_JWT_ERROR(Validate(testing::Hs256Token(header, Payload(), rsa_->PublicPem())),
                     JwtError::kUnsupportedAlg);
  }
}

TEST_F(JwtTest, AlgMustFitTheKeyType) {
  // ES256 naming the RSA key, and RS256 naming the EC key, whichever key signed.
  EXPECT_JWT_ERROR(Validate(testing::SignedToken(Header("ES256", "rsa-1"), Payload(), *ec_)),
                   JwtError::kKeyMismatch);
  EXPECT_JWT_ERROR(Validate(testing::SignedToken(Header("RS256", "ec-1"), Payload(), *rsa_)),
                   JwtError::kKeyMismatch);
  EXPECT_JWT_ERROR(Validate(testing::SignedToken(Header("RS256", "rsa-1"), Payload(), *ec_)),
                   JwtError::kBadSignature);
}

TEST_F(JwtTest, TamperedPayloadOrSignatureIsRefused) {
  for (const auto& [alg, kid, key] : {std::tuple{"RS256", "rsa-1", rsa_}, std::tuple{"ES256", "ec-1", ec_}}) {
    SCOPED_TRACE(alg);
    const std::string token = testing::SignedToken(Header(alg, kid), Payload(), *key);
    const size_t dot1 = token.find('.');
    const size_t dot2 = token.rfind('.');

    value promoted = Payload();
    promoted["roles"] = value::array({value::string("admin")});
    const std::string forged =
        token.substr(0, dot1 + 1) + Base64UrlEncode(promoted.serialize()) + token.substr(dot2);
    EXPECT_JWT_ERROR(Validate(forged), JwtError::kBadSignature);

    std::string sig = *Base64UrlDecode(token.substr(dot2 + 1));
    sig[sig.size() / 2] ^= 0x01;
    EXPECT_JWT_ERROR(Validate(token.substr(0, dot2 + 1) + Base64UrlEncode(sig)), JwtError::kBadSignature);
    EXPECT_JWT_ERROR(Validate(token.substr(0, dot2 + 1)), JwtError::kBadSignature);  // empty signature
  }
}

TEST_F(JwtTest, Es256SignatureMustBe64RawBytes) {
  const std::string input = testing::SigningInput(Header("ES256", "ec-1"), Payload());
  const std::string raw = ec_->Sign(input);
  EXPECT_TRUE(Validate(input + "." + Base64UrlEncode(raw)).ok());
  EXPECT_JWT_ERROR(Validate(input + "." + Base64UrlEncode(raw + '\0')), JwtError::kBadSignature);
  EXPECT_JWT_ERROR(Validate(input + "." + Base64UrlEncode(raw.substr(0, 63))), JwtError::kBadSignature);
  // The DER form OpenSSL produces is a valid ECDSA signature, but not a JWS one.
  EXPECT_JWT_ERROR(Validate(input + "." + Base64UrlEncode(ec_->Sign(input, /*der=*/true))),
                   JwtError::kBadSignature);
  EXPECT_JWT_ERROR(Validate(input + "." + Base64UrlEncode(std::string(64, '\0'))), JwtError::kBadSignature);
}

TEST_F(JwtTest, FormIsChecked) {
  const std::string token = testing::SignedToken(Header("RS256", "rsa-1"), Payload(), *rsa_);
  ASSERT_TRUE(Validate(token).ok());
  const size_t dot1 = token.find('.');
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty", ""},
      {"two parts", token.substr(0, token.rfind('.'))},
      {"four parts", token + ".x"},
      {"JWE-like five parts", token + ".x.y"},
      {"padding on the header", token.substr(0, dot1) + "=" + token.substr(dot1)},
      {"padding on the signature", token + "=="},
      {"standard base64 character", "+" + token.substr(1)},
      {"space", token.substr(0, dot1) + " " + token.substr(dot1)},
      {"header not JSON", Base64UrlEncode("{\"alg\":") + token.substr(dot1)},
      {"header an array", Base64UrlEncode("[\"RS256\"]") + token.substr(dot1)},
      {"header nested deeply",
       Base64UrlEncode(std::string(5000, '[') + std::string(5000, ']')) + token.substr(dot1)},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    EXPECT_JWT_ERROR(Validate(text), JwtError::kMalformed);
  }
  // A signed payload that is not JSON is found once the signature holds.
  auto header = Header("RS256", "rsa-1");
  const std::string input = Base64UrlEncode(header.serialize()) + "." + Base64UrlEncode("not json");
  EXPECT_JWT_ERROR(Validate(input + "." + Base64UrlEncode(rsa_->Sign(input))), JwtError::kMalformed);
}

TEST_F(JwtTest, SizeCap) {
  auto payload = Payload();
  payload["pad"] = value::string(std::string(11000, 'a'));  // ~14.7 KiB once encoded
  const std::string near = testing::SignedToken(Header("RS256", "rsa-1"), payload, *rsa_);
  ASSERT_LT(near.size(), kMaxTokenSize);
  EXPECT_TRUE(Validate(near).ok());
  payload["pad"] = value::string(std::string(12500, 'a'));
  const std::string over = testing::SignedToken(Header("RS256", "rsa-1"), payload, *rsa_);
  ASSERT_GT(over.size(), kMaxTokenSize);
  EXPECT_JWT_ERROR(Validate(over), JwtError::kMalformed);
}

TEST_F(JwtTest, RolesFromAConfiguredClaim) {
  auto payload = Payload();
  auto realm = value::object();
  realm["roles"] = value::array({value::string("admin")});
  payload["realm_access"] = realm;
  payload["scope"] = value::string("openid  listener uploader ");
  payload["plain"] = value::string("x");
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"realm_access.roles", {"admin"}},
      {"scope", {"openid", "listener", "uploader"}},
      {"realm_access.missing", {}},
      {"plain.roles", {}},  // a path through a non-object
      {"absent", {}},
  };
  for (const auto& [path, roles] : cases) {
    SCOPED_TRACE(path);
    policy_.roles_claim = path;
    auto result = Validate(testing::SignedToken(Header("RS256", "rsa-1"), payload, *rsa_));
    ASSERT_TRUE(result.ok()) << result.failure().detail;
    EXPECT_EQ(result->roles, roles);
  }
  policy_.roles_claim = "realm_access";  // an object
  EXPECT_JWT_ERROR(Validate(testing::SignedToken(Header("RS256", "rsa-1"), payload, *rsa_)),
                   JwtError::kMalformed);
}

TEST(JwtErrorTest, NamesAreDistinctAndPrefixTheStatus) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(JwtError::kKeysUnavailable); ++i) {
    const auto code = static_cast<JwtError>(i);
    EXPECT_TRUE(names.insert(JwtErrorName(code)).second) << JwtErrorName(code);
    const Status status = JwtFailure{code, "why"}.ToStatus();
    EXPECT_EQ(status.message(), "jwt " + std::string(JwtErrorName(code)) + ": why");
    EXPECT_EQ(status.code(),
              code == JwtError::kKeysUnavailable ? StatusCode::kUnavailable : StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(JwtErrorName(JwtError::kExpired), "expired");
  EXPECT_EQ(JwtErrorName(JwtError::kWrongAudience), "wrong_audience");
}

}  // namespace
}  // namespace dispotify::auth
