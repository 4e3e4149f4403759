// Who is calling: every kind of credential, each way it can be refused, with the records in a
// table instead of the catalog.

#include "node/auth/authenticator.h"

#include <gtest/gtest.h>

#include <map>

namespace dispotify::auth {
namespace {

class TableSource final : public CredentialSource {
 public:
  Result<std::optional<UserRecord>> FindUser(std::string_view name) override {
    if (broken) return Status::Unavailable("store down");
    auto it = users.find(std::string(name));
    if (it == users.end()) return std::optional<UserRecord>();
    return std::optional<UserRecord>(it->second);
  }
  Result<std::optional<TokenRecord>> FindToken(std::string_view id) override {
    if (broken) return Status::Unavailable("store down");
    auto it = tokens.find(std::string(id));
    if (it == tokens.end()) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(it->second);
  }
  std::map<std::string, UserRecord> users;
  std::map<std::string, TokenRecord> tokens;
  bool broken = false;
};

struct Fixture {
  Fixture() {
    source.users["alice"] = UserRecord{"alice", {Role::kUploader}, "", false, 1};
    source.users["carol"] = UserRecord{"carol", {Role::kAdmin}, "", true, 1};  // disabled
    Authenticator::Options o;
    o.static_admin_token = "static-secret";
    o.now_ms = [this] { return now; };
    authn = std::make_unique<Authenticator>(o, &source);
  }
  // Stores a token of `owner` and returns its secret.
  std::string Add(std::string owner, TokenKind kind, std::vector<Role> roles, int64_t expires_ms) {
    auto s = MakeSecret(kind == TokenKind::kSession ? kSessionPrefix : kApiTokenPrefix);
    EXPECT_TRUE(s.ok());
    TokenRecord t;
    t.id = s->id;
    t.owner = std::move(owner);
    t.kind = kind;
    t.roles = std::move(roles);
    t.expires_ms = expires_ms;
    t.csrf_sha256 = kind == TokenKind::kSession ? std::string(64, 'c') : "";
    source.tokens[t.id] = t;
    return s->secret;
  }
  std::variant<Authenticated, AuthError> Bearer(const std::string& b) { return authn->Authenticate({b, {}}); }
  std::variant<Authenticated, AuthError> Cookie(const std::string& c) { return authn->Authenticate({{}, c}); }

  int64_t now = 1'000'000;
  TableSource source;
  std::unique_ptr<Authenticator> authn;
};

std::string CodeOf(const std::variant<Authenticated, AuthError>& r) {
  if (const auto* e = std::get_if<AuthError>(&r)) return e->code;
  return "ok";
}

TEST(Authenticator, NoCredentialsIsAnonymous) {
  Fixture f;
  auto r = f.authn->Authenticate({});
  ASSERT_EQ(CodeOf(r), "ok");
  EXPECT_FALSE(std::get<Authenticated>(r).principal.authenticated());
  EXPECT_EQ(std::get<Authenticated>(r).via, Via::kAnonymous);
}

TEST(Authenticator, TheStaticTokenIsAnAdmin) {
  Fixture f;
  auto r = f.Bearer("static-secret");
  ASSERT_EQ(CodeOf(r), "ok");
  const auto& a = std::get<Authenticated>(r);
  EXPECT_EQ(a.via, Via::kStaticToken);
  EXPECT_TRUE(a.principal.Has(Permission::kAdmin));
  EXPECT_EQ(CodeOf(f.Bearer("static-secreT")), "invalid_token");
  EXPECT_EQ(CodeOf(f.Bearer("static-secret-and-more")), "invalid_token");
}

TEST(Authenticator, ApiTokensCarryTheirRolesBoundedByTheOwners) {
  Fixture f;
  const std::string listener = f.Add("alice", TokenKind::kApi, {Role::kListener}, 0);
  auto r = f.Bearer(listener);
  ASSERT_EQ(CodeOf(r), "ok");
  EXPECT_EQ(std::get<Authenticated>(r).principal.name, "alice");
  EXPECT_EQ(std::get<Authenticated>(r).principal.roles, std::vector<Role>{Role::kListener});
  EXPECT_FALSE(std::get<Authenticated>(r).principal.Has(Permission::kUpload));
  // A token claiming admin for an uploader owner gets nothing of it.
  const std::string inflated = f.Add("alice", TokenKind::kApi, {Role::kAdmin, Role::kUploader}, 0);
  r = f.Bearer(inflated);
  ASSERT_EQ(CodeOf(r), "ok");
  EXPECT_EQ(std::get<Authenticated>(r).principal.roles, std::vector<Role>{Role::kUploader});
  // Demoting the owner demotes the token.
  f.source.users["alice"].roles = {Role::kListener};
  r = f.Bearer(inflated);
  EXPECT_TRUE(std::get<Authenticated>(r).principal.roles.empty());
}

TEST(Authenticator, EachRefusalHasItsCode) {
  Fixture f;
  const std::string expiring = f.Add("alice", TokenKind::kApi, {Role::kListener}, f.now + 10);
  EXPECT_EQ(CodeOf(f.Bearer(expiring)), "ok");
  f.now += 10;
  EXPECT_EQ(CodeOf(f.Bearer(expiring)), "token_expired");
  EXPECT_EQ(CodeOf(f.Bearer("dsp_never-issued")), "invalid_token");
  const std::string revoked = f.Add("alice", TokenKind::kApi, {Role::kListener}, 0);
  f.source.tokens.erase(SecretId(revoked));
  EXPECT_EQ(CodeOf(f.Bearer(revoked)), "invalid_token");
  const std::string disabled = f.Add("carol", TokenKind::kApi, {Role::kAdmin}, 0);
  EXPECT_EQ(CodeOf(f.Bearer(disabled)), "user_disabled");
  const std::string orphan = f.Add("deleted", TokenKind::kApi, {Role::kAdmin}, 0);
  EXPECT_EQ(CodeOf(f.Bearer(orphan)), "user_disabled");
  EXPECT_EQ(CodeOf(f.Bearer("a.b.c")), "invalid_token") << "a JWT with OIDC off";
  EXPECT_EQ(CodeOf(f.Bearer("garbage")), "invalid_token");
  f.source.broken = true;
  auto r = f.Bearer(f.Add("alice", TokenKind::kApi, {}, 0));
  ASSERT_EQ(CodeOf(r), "store_unavailable");
  EXPECT_TRUE(std::get<AuthError>(r).unavailable);
}

TEST(Authenticator, SessionsComeOnlyFromTheCookieAndAlwaysExpire) {
  Fixture f;
  const std::string session = f.Add("alice", TokenKind::kSession, {Role::kUploader}, f.now + 1000);
  auto r = f.Cookie(session);
  ASSERT_EQ(CodeOf(r), "ok");
  EXPECT_EQ(std::get<Authenticated>(r).via, Via::kSession);
  EXPECT_EQ(std::get<Authenticated>(r).csrf_sha256, std::string(64, 'c'));
  EXPECT_EQ(std::get<Authenticated>(r).token_id, SecretId(session));
  // A session secret is not a bearer token, nor an API token a session.
  EXPECT_EQ(CodeOf(f.Bearer(session)), "invalid_token");
  const std::string api = f.Add("alice", TokenKind::kApi, {Role::kUploader}, 0);
  EXPECT_EQ(CodeOf(f.Cookie(api)), "invalid_token");
  // expires_ms 0 is "never" for API tokens only.
  const std::string forever = f.Add("alice", TokenKind::kSession, {Role::kUploader}, 0);
  EXPECT_EQ(CodeOf(f.Cookie(forever)), "token_expired");
  f.now += 1000;
  EXPECT_EQ(CodeOf(f.Cookie(session)), "token_expired");
}

TEST(Authenticator, ASessionHoldsItsUsersCurrentRoles) {
  Fixture f;
  const std::string session = f.Add("alice", TokenKind::kSession, {Role::kUploader}, f.now + 1000);
  auto roles = [&] { return std::get<Authenticated>(f.Cookie(session)).principal.roles; };
  EXPECT_EQ(roles(), std::vector<Role>{Role::kUploader});
  f.source.users["alice"].roles = {Role::kListener};  // demoted while signed in
  EXPECT_EQ(roles(), std::vector<Role>{Role::kListener});
  f.source.users["alice"].roles = {Role::kUploader, Role::kAdmin};  // promoted
  EXPECT_EQ(roles(), (std::vector<Role>{Role::kUploader, Role::kAdmin}));
}

TEST(Authenticator, ABearerWinsOverTheCookie) {
  Fixture f;
  const std::string session = f.Add("alice", TokenKind::kSession, {Role::kUploader}, f.now + 1000);
  auto r = f.authn->Authenticate({std::string("static-secret"), session});
  ASSERT_EQ(CodeOf(r), "ok");
  EXPECT_EQ(std::get<Authenticated>(r).via, Via::kStaticToken);
}

TEST(AuthHeaders, BearerAndCookieParsing) {
  EXPECT_EQ(BearerOf("Bearer abc").value_or("-"), "abc");
  EXPECT_EQ(BearerOf("bearer  abc ").value_or("-"), "abc");
  EXPECT_FALSE(BearerOf("Basic abc"));
  EXPECT_FALSE(BearerOf("Bearer "));
  EXPECT_FALSE(BearerOf("Bearerabc"));
  EXPECT_EQ(CookieValue("a=1; dispotify_session=dss_x; b=2", "dispotify_session").value_or("-"), "dss_x");
  EXPECT_EQ(CookieValue("dispotify_session=\"q\"", "dispotify_session").value_or("-"), "q");
  EXPECT_FALSE(CookieValue("xdispotify_session=1", "dispotify_session"));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

}  // namespace
}  // namespace dispotify::auth
