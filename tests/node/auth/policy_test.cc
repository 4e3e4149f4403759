#include "node/auth/policy.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

#include "node/api/covers.h"
#include "node/api/http/router.h"
#include "node/api/rest_api.h"

namespace dispotify::auth {
namespace {

// Every route the REST API registers has a rule, and every rule names a route that exists (but
// /metrics, served by the metrics exposer, and "", the router's fallback): a route added without
// deciding who may call it fails here.
TEST(PolicyTest, EveryRouteHasARuleAndEveryRuleARoute) {
  api::http::Router router;
  api::CoverService covers({}, {});
  api::RestApiDeps deps;
  deps.covers = &covers;
  api::AddRestRoutes(api::RestApiOptions{}, deps, &router);
  ASSERT_GT(router.size(), 15u);
  std::set<std::pair<std::string, std::string>> registered;
  for (const auto& route : router.routes()) {
    registered.emplace(route.method, route.pattern);
    EXPECT_TRUE(RuleFor(route.method, route.pattern).has_value())
        << route.method << " " << route.pattern << " has no rule in node/auth/policy.cc";
  }
  for (const RouteRule& rule : RouteRules()) {
    if (rule.pattern == "/metrics" || rule.pattern.empty()) continue;
    EXPECT_EQ(registered.count({std::string(rule.method), std::string(rule.pattern)}), 1u)
        << rule.method << " " << rule.pattern << " is not a route";
  }
}

Principal As(std::vector<Role> roles) {
  return Principal{"someone", std::move(roles)};
}

TEST(PolicyTest, DecisionsByRole) {
  const Principal anonymous;
  const Principal listener = As({Role::kListener});
  const Principal uploader = As({Role::kUploader});
  const Principal admin = As({Role::kAdmin});
  const Principal none = As({});  // authenticated, no role (e.g. a token whose roles were all removed)
  const Principal scraper = As({Role::kMetrics});  // Prometheus: /metrics and its own tokens only
  using D = Decision;
  struct Row {
    const char* method;
    std::optional<std::string_view> pattern;
    D anonymous, listener, uploader, admin, none, scraper;
  };
  const Row rows[] = {
      {"GET", "/healthz", D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow},
      {"HEAD", "/readyz", D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow},
      {"GET", std::nullopt, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow,
       D::kAllow},  // the UI's files
      {"GET", "/music/songs", D::kUnauthenticated, D::kAllow, D::kAllow, D::kAllow, D::kForbidden,
       D::kForbidden},
      {"GET", "/music/search", D::kUnauthenticated, D::kAllow, D::kAllow, D::kAllow, D::kForbidden,
       D::kForbidden},
      {"HEAD", "/music/stream/{file_id}", D::kUnauthenticated, D::kAllow, D::kAllow, D::kAllow, D::kForbidden,
       D::kForbidden},
      {"GET", "/music/covers/{sha256}", D::kUnauthenticated, D::kAllow, D::kAllow, D::kAllow, D::kForbidden,
       D::kForbidden},
      {"POST", "/music/upload", D::kUnauthenticated, D::kForbidden, D::kAllow, D::kAllow, D::kForbidden,
       D::kForbidden},
      {"DELETE", "/music/songs/{file_id}", D::kUnauthenticated, D::kForbidden, D::kAllow, D::kAllow,
       D::kForbidden, D::kForbidden},
      {"PUT", "/admin/replication", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kAllow,
       D::kForbidden, D::kForbidden},
      {"POST", "/admin/members", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kAllow, D::kForbidden,
       D::kForbidden},
      {"GET", "/metrics", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kAllow, D::kForbidden,
       D::kAllow},
      {"POST", "/auth/login", D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow},
      // The login page asks which sign-ins there are before anyone has signed in.
      {"GET", "/auth/config", D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow},
      {"POST", "/auth/config", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kForbidden,
       D::kForbidden, D::kForbidden},
      {"POST", "/auth/tokens", D::kUnauthenticated, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow},
      {"GET", "/auth/me", D::kUnauthenticated, D::kAllow, D::kAllow, D::kAllow, D::kAllow, D::kAllow},
      {"POST", "/admin/users", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kAllow, D::kForbidden,
       D::kForbidden},
      // No rule: denied to everyone (fail closed), 401 first for a caller without credentials.
      {"GET", "/admin/secret", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kForbidden,
       D::kForbidden, D::kForbidden},
      {"POST", "/music/songs", D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kForbidden,
       D::kForbidden, D::kForbidden},
      {"POST", std::nullopt, D::kUnauthenticated, D::kForbidden, D::kForbidden, D::kForbidden, D::kForbidden,
       D::kForbidden},
  };
  for (const Row& r : rows) {
    const std::string what = std::string(r.method) + " " + std::string(r.pattern.value_or("<fallback>"));
    EXPECT_EQ(Decide(anonymous, r.method, r.pattern), r.anonymous) << what;
    EXPECT_EQ(Decide(listener, r.method, r.pattern), r.listener) << what;
    EXPECT_EQ(Decide(uploader, r.method, r.pattern), r.uploader) << what;
    EXPECT_EQ(Decide(admin, r.method, r.pattern), r.admin) << what;
    EXPECT_EQ(Decide(none, r.method, r.pattern), r.none) << what;
    EXPECT_EQ(Decide(scraper, r.method, r.pattern), r.scraper) << what;
  }
  // Roles add up; only admins delete other people's songs.
  EXPECT_TRUE(As({Role::kListener, Role::kUploader}).Has(Permission::kUpload));
  EXPECT_FALSE(uploader.Has(Permission::kDeleteAny));
  EXPECT_TRUE(admin.Has(Permission::kDeleteAny));
}

TEST(PolicyTest, RoleNamesRoundTrip) {
  for (Role r : {Role::kListener, Role::kUploader, Role::kAdmin, Role::kMetrics})
    EXPECT_EQ(ParseRole(RoleName(r)), r);
  EXPECT_FALSE(ParseRole("Admin").has_value());
  EXPECT_FALSE(ParseRole("").has_value());
  EXPECT_STREQ(PermissionName(Permission::kDeleteOwn), "delete_own");
}

}  // namespace
}  // namespace dispotify::auth
