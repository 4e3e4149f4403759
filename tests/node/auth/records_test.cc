#include "node/auth/records.h"

#include <gtest/gtest.h>

namespace dispotify::auth {
namespace {

TEST(Records, UsersAndTokensRoundTrip) {
  UserRecord u{"alice", {Role::kListener, Role::kAdmin}, "$argon2id$v=19$x", true, 42};
  auto back = DecodeUser(EncodeUser(u));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->name, "alice");
  EXPECT_EQ(back->roles, (std::vector<Role>{Role::kListener, Role::kAdmin}));
  EXPECT_EQ(back->password_hash, u.password_hash);
  EXPECT_TRUE(back->disabled);
  EXPECT_EQ(back->created_ms, 42);
  EXPECT_FALSE(back->oidc);
  EXPECT_EQ(EncodeUser(u).find("oidc"), std::string::npos);  // records as before the field
  u.oidc = true;
  auto marked = DecodeUser(EncodeUser(u));
  ASSERT_TRUE(marked.ok()) << marked.status().ToString();
  EXPECT_TRUE(marked->oidc);

  TokenRecord t;
  t.id = std::string(64, 'f');
  t.owner = "alice";
  t.name = "laptop";
  t.kind = TokenKind::kSession;
  t.roles = {Role::kUploader};
  t.created_ms = 5;
  t.expires_ms = 9;
  t.csrf_sha256 = std::string(64, 'c');
  auto tb = DecodeToken(EncodeToken(t));
  ASSERT_TRUE(tb.ok()) << tb.status().ToString();
  EXPECT_EQ(tb->id, t.id);
  EXPECT_EQ(tb->kind, TokenKind::kSession);
  EXPECT_EQ(tb->roles, t.roles);
  EXPECT_EQ(tb->expires_ms, 9);
  EXPECT_EQ(tb->csrf_sha256, t.csrf_sha256);
}

TEST(Records, DamagedRecordsAreCorruptionNotDefaults) {
  EXPECT_EQ(DecodeUser("{").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeUser("[]").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeUser(R"({"name":"a","roles":["root"]})").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeUser(R"({"roles":[]})").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeToken(R"({"id":"x","owner":"a","kind":"other","roles":[]})").status().code(),
            StatusCode::kCorruption);
}

TEST(Records, RolesParseSortedAndIntersect) {
  auto r = ParseRoles({"admin", "listener", "admin"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<Role>{Role::kListener, Role::kAdmin}));
  EXPECT_EQ(ParseRoles({"superuser"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(IntersectRoles({Role::kListener, Role::kUploader}, {Role::kUploader}),
            (std::vector<Role>{Role::kListener, Role::kUploader}));
  EXPECT_EQ(IntersectRoles({Role::kAdmin}, {Role::kUploader}), std::vector<Role>{});
  EXPECT_EQ(IntersectRoles({Role::kUploader}, {Role::kListener}), std::vector<Role>{});
  EXPECT_EQ(RoleNames({Role::kListener, Role::kAdmin}), (std::vector<std::string>{"listener", "admin"}));
}

TEST(Records, SecretsAreRandomPrefixedAndIdentifiedByTheirHash) {
  auto a = MakeSecret(kApiTokenPrefix);
  auto b = MakeSecret(kApiTokenPrefix);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->secret, b->secret);
  EXPECT_EQ(a->secret.rfind("dsp_", 0), 0u);
  EXPECT_EQ(a->secret.size(), 4u + 43u);  // 32 bytes in base64url without padding
  EXPECT_EQ(a->id, SecretId(a->secret));
  EXPECT_EQ(a->id.size(), 64u);
  EXPECT_EQ(a->id.find(a->secret), std::string::npos);
}

}  // namespace
}  // namespace dispotify::auth
