#include <gtest/gtest.h>

#include <string>

#include "node/api/auth_api.h"

namespace dispotify::api {
namespace {

// The login page names the issuer by its host: what a person recognises, never a path, a query
// or credentials written into the URL.
TEST(AuthConfigTest, ProviderNameIsTheIssuersHost) {
  struct Row {
    const char* issuer;
    const char* name;
  };
  const Row rows[] = {
      {"https://id.example.com/realms/music", "id.example.com"},
      {"https://accounts.example.org", "accounts.example.org"},
      {"https://accounts.example.org/", "accounts.example.org"},
      {"http://127.0.0.1:4444", "127.0.0.1:4444"},
      {"http://127.0.0.1:4444/", "127.0.0.1:4444"},
      {"https://login.example.com?tenant=x", "login.example.com"},
      {"https://login.example.com#frag", "login.example.com"},
      {"https://user:secret@id.example.com/x", "id.example.com"},
      {"id.example.com", ""},
      {"", ""},
  };
  for (const Row& r : rows) EXPECT_EQ(OidcProviderName(r.issuer), r.name) << r.issuer;
}

TEST(AuthConfigTest, BodySaysWhichSignInsThereAre) {
  EXPECT_EQ(AuthConfigJson(false, ""), R"({"oidc":{"enabled":false},"password":true})");
  // An issuer without the browser login (bearer JWTs only) offers no button either.
  EXPECT_EQ(AuthConfigJson(false, "https://id.example.com"), R"({"oidc":{"enabled":false},"password":true})");
  EXPECT_EQ(
      AuthConfigJson(true, "https://id.example.com/realms/music"),
      R"({"oidc":{"enabled":true,"login_url":"/auth/oidc/login","name":"id.example.com"},"password":true})");
}

}  // namespace
}  // namespace dispotify::api
