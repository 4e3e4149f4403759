// The pure parts of the browser login through the issuer (node/auth/oidc_login.h): PKCE against
// RFC 7636's own example, the authorization URL and the token request as an issuer parses them,
// and the token endpoint's answers, errors included.

#include "node/auth/oidc_login.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace dispotify::auth {
namespace {

// The query (or form) parameters of `text` after the first '?' (or all of it), unescaped.
std::map<std::string, std::string> Params(const std::string& text) {
  const size_t q = text.find('?');
  const std::string query = q == std::string::npos ? text : text.substr(q + 1);
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(pos, end - pos);
    const size_t eq = pair.find('=');
    std::string value;
    const std::string raw = eq == std::string::npos ? "" : pair.substr(eq + 1);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '%' && i + 2 < raw.size()) {
        value += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        value += raw[i];
      }
    }
    EXPECT_TRUE(out.emplace(pair.substr(0, eq), value).second) << "twice: " << pair;
    pos = end + 1;
  }
  return out;
}

TEST(OidcLoginTest, PkceS256IsRfc7636sExample) {
  // RFC 7636, Appendix B.
  EXPECT_EQ(PkceS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST(OidcLoginTest, EachLoginHasItsOwnStateAndVerifier) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto start = StartLogin();
    ASSERT_TRUE(start.ok()) << start.status().ToString();
    // 43 base64url characters: RFC 7636 §4.1's minimum length, 256 bits of randomness.
    EXPECT_EQ(start->state.size(), 43u);
    EXPECT_EQ(start->code_verifier.size(), 43u);
    EXPECT_EQ(start->code_verifier.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"),
              std::string::npos);
    EXPECT_EQ(start->code_challenge, PkceS256(start->code_verifier));
    EXPECT_NE(start->state, start->code_verifier);
    EXPECT_TRUE(seen.insert(start->state).second);
    EXPECT_TRUE(seen.insert(start->code_verifier).second);
  }
}

TEST(OidcLoginTest, FormEscapeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(FormEscape("aZ09-._~"), "aZ09-._~");
  EXPECT_EQ(FormEscape("a b&c=d/é?#+"), "a%20b%26c%3Dd%2F%C3%A9%3F%23%2B");
  EXPECT_EQ(FormEscape(""), "");
}

TEST(OidcLoginTest, AuthorizationUrlCarriesTheChallengeNotTheVerifier) {
  LoginStart start{"the-state", "the-verifier", PkceS256("the-verifier")};
  AuthorizationRequest request{"https://id.example/oauth2/auth", "dispotify-web",
                               "https://music.example/auth/oidc/callback", "listener uploader", "dispotify"};
  const std::string url = AuthorizationUrl(request, start);
  EXPECT_EQ(url.rfind("https://id.example/oauth2/auth?", 0), 0u) << url;
  EXPECT_EQ(url.find("the-verifier"), std::string::npos) << url;
  const auto p = Params(url);
  EXPECT_EQ(p.at("response_type"), "code");
  EXPECT_EQ(p.at("client_id"), "dispotify-web");
  EXPECT_EQ(p.at("redirect_uri"), "https://music.example/auth/oidc/callback");
  EXPECT_EQ(p.at("scope"), "openid listener uploader");
  EXPECT_EQ(p.at("state"), "the-state");
  EXPECT_EQ(p.at("code_challenge"), PkceS256("the-verifier"));
  EXPECT_EQ(p.at("code_challenge_method"), "S256");
  EXPECT_EQ(p.at("audience"), "dispotify");

  // An endpoint with a query of its own keeps it; openid is not added twice; no audience, none
  // sent.
  request.authorization_endpoint = "https://id.example/auth?tenant=a";
  request.scope = "listener openid";
  request.audience = "";
  const auto q = Params(AuthorizationUrl(request, start));
  EXPECT_EQ(q.at("tenant"), "a");
  EXPECT_EQ(q.at("scope"), "listener openid");
  EXPECT_FALSE(q.contains("audience"));
}

TEST(OidcLoginTest, TokenRequestCarriesTheVerifierAndTheSecretOnlyIfAny) {
  const auto p =
      Params(TokenRequestBody("dispotify-web", "s3cret&", "the code", "https://m.example/cb", "v"));
  EXPECT_EQ(p.at("grant_type"), "authorization_code");
  EXPECT_EQ(p.at("code"), "the code");
  EXPECT_EQ(p.at("redirect_uri"), "https://m.example/cb");
  EXPECT_EQ(p.at("client_id"), "dispotify-web");
  EXPECT_EQ(p.at("code_verifier"), "v");
  EXPECT_EQ(p.at("client_secret"), "s3cret&");
  EXPECT_FALSE(
      Params(TokenRequestBody("public", "", "c", "https://m.example/cb", "v")).contains("client_secret"));
}

TEST(OidcLoginTest, TokenResponses) {
  auto ok =
      ParseTokenResponse(R"({"access_token":"at","id_token":"it","token_type":"bearer","expires_in":3600})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->access_token, "at");
  EXPECT_EQ(ok->id_token, "it");
  auto no_id = ParseTokenResponse(R"({"access_token":"at","token_type":"Bearer"})");
  ASSERT_TRUE(no_id.ok()) << no_id.status().ToString();
  EXPECT_EQ(no_id->id_token, "");

  auto refused = ParseTokenResponse(R"({"error":"invalid_grant","error_description":"the code was used"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("invalid_grant (the code was used)"), std::string::npos)
      << refused.status().ToString();

  for (const char* bad :
       {"", "<html>", "[]", R"({"token_type":"Bearer"})", R"({"access_token":"at"})",
        R"({"access_token":"at","token_type":"mac"})", R"({"access_token":1,"token_type":"Bearer"})"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseTokenResponse(bad).status().code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace dispotify::auth
