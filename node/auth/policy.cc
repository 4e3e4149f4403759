#include "node/auth/policy.h"

#include <algorithm>
#include <array>

namespace dispotify::auth {

namespace {

using P = Permission;

constexpr std::array<RouteRule, 37> kRules = {{
    {"GET", "/healthz", P::kPublic},
    {"GET", "/readyz", P::kPublic},
    {"GET", "/cluster/status", P::kBrowse},
    {"GET", "/music/songs", P::kBrowse},
    {"GET", "/music/songs/{file_id}", P::kBrowse},
    {"GET", "/music/artists", P::kBrowse},
    {"GET", "/music/albums", P::kBrowse},
    {"GET", "/music/albums/{album_id}", P::kBrowse},
    {"GET", "/music/covers/{sha256}", P::kBrowse},
    {"GET", "/music/search", P::kSearch},
    {"GET", "/music/stream/{file_id}", P::kStream},
    {"POST", "/music/upload", P::kUpload},
    {"DELETE", "/music/songs/{file_id}", P::kDeleteOwn},
    {"POST", "/admin/members", P::kAdmin},
    {"POST", "/admin/members/{id}/promote", P::kAdmin},
    {"DELETE", "/admin/members/{id}", P::kAdmin},
    {"POST", "/admin/members/{id}/drain", P::kAdmin},
    {"DELETE", "/admin/members/{id}/drain", P::kAdmin},
    {"POST", "/admin/leadership", P::kAdmin},
    {"PUT", "/admin/replication", P::kAdmin},
    {"GET", "/admin/users", P::kAdmin},
    {"GET", "/admin/audit", P::kAdmin},
    {"POST", "/admin/users", P::kAdmin},
    {"PUT", "/admin/users/{name}", P::kAdmin},
    {"DELETE", "/admin/users/{name}", P::kAdmin},
    // Login needs no credentials (it is how one gets them); logout without a session is a no-op;
    // the login page asks which sign-ins there are before anyone has signed in.
    {"GET", "/auth/config", P::kPublic},
    {"POST", "/auth/login", P::kPublic},
    {"POST", "/auth/logout", P::kPublic},
    {"GET", "/auth/me", P::kSelf},
    {"PUT", "/auth/password", P::kSelf},
    {"GET", "/auth/tokens", P::kSelf},
    {"POST", "/auth/tokens", P::kSelf},
    {"DELETE", "/auth/tokens/{id}", P::kSelf},
    // The browser login through the OIDC issuer: how one without credentials gets them.
    {"GET", "/auth/oidc/login", P::kPublic},
    {"GET", "/auth/oidc/callback", P::kPublic},
    // Not on the REST router: the metrics server on its own port (node/server/metrics.h).
    {"GET", "/metrics", P::kMetrics},
    // The router's fallback: the web UI's files and client-side routes (node/api/static_files.h).
    {"GET", "", P::kPublic},
}};

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kListener: return "listener";
    case Role::kUploader: return "uploader";
    case Role::kAdmin: return "admin";
    case Role::kMetrics: return "metrics";
  }
  return "?";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kListener, Role::kUploader, Role::kAdmin, Role::kMetrics}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

const char* PermissionName(Permission permission) {
  switch (permission) {
    case P::kPublic: return "public";
    case P::kBrowse: return "browse";
    case P::kSearch: return "search";
    case P::kStream: return "stream";
    case P::kUpload: return "upload";
    case P::kDeleteOwn: return "delete_own";
    case P::kDeleteAny: return "delete_any";
    case P::kAdmin: return "admin";
    case P::kMetrics: return "metrics";
    case P::kSelf: return "self";
  }
  return "?";
}

bool RoleGrants(Role role, Permission permission) {
  switch (permission) {
    case P::kPublic:  // anyone
    case P::kSelf: return true;
    case P::kBrowse:  // every role but a scraper's listens
    case P::kSearch:
    case P::kStream: return role != Role::kMetrics;
    case P::kUpload:
    case P::kDeleteOwn: return role == Role::kUploader || role == Role::kAdmin;
    case P::kDeleteAny:
    case P::kAdmin: return role == Role::kAdmin;
    case P::kMetrics: return role == Role::kAdmin || role == Role::kMetrics;
  }
  return false;
}

std::span<const RouteRule> RouteRules() {
  return kRules;
}

std::optional<Permission> RuleFor(std::string_view method, std::string_view pattern) {
  // HEAD is answered by the GET route (the router does the same).
  const std::string_view m = method == "HEAD" ? std::string_view("GET") : method;
  const auto it = std::find_if(kRules.begin(), kRules.end(),
                               [&](const RouteRule& r) { return r.method == m && r.pattern == pattern; });
  if (it == kRules.end()) return std::nullopt;
  return it->permission;
}

bool Principal::Has(Permission permission) const {
  if (permission == P::kPublic) return true;
  if (permission == P::kSelf) return authenticated();
  return std::any_of(roles.begin(), roles.end(), [&](Role r) { return RoleGrants(r, permission); });
}

Decision Decide(const Principal& who, std::string_view method, std::optional<std::string_view> pattern) {
  const std::optional<Permission> rule = RuleFor(method, pattern.value_or(""));
  if (!rule) return who.authenticated() ? Decision::kForbidden : Decision::kUnauthenticated;
  if (*rule == P::kPublic) return Decision::kAllow;
  if (!who.authenticated()) return Decision::kUnauthenticated;
  return who.Has(*rule) ? Decision::kAllow : Decision::kForbidden;
}

}  // namespace dispotify::auth
