#pragma once
// Who may do what: roles, the permissions they grant, and the rule of every REST route. Pure
// decision logic (no I/O), so tests drive it with tables; the HTTP layer asks Decide() for every
// request before the handler runs and answers 401 or 403 itself.
//
// Deny by default. A route is matched by the router's pattern (not the raw path, which a client
// controls): a (method, pattern) without a rule in RouteRules() is refused for everyone, and
// policy_test fails when a route registered by the REST API has no rule (or a rule names a route
// that does not exist), so a route cannot be added without deciding who may call it.
//
// Roles (issue 13): listener (browse, search, stream), uploader (+ upload, delete own songs),
// admin (everything: any song, users, the cluster admin API, metrics); and metrics (only
// /metrics, for scrapers). A principal holds any set
// of roles; an API token holds a subset of its owner's.
//
// Ownership is the handler's business: DELETE /music/songs/{id} needs kDeleteOwn, and the handler
// then refuses a song uploaded by someone else unless the caller also has kDeleteAny.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dispotify::auth {

enum class Permission : uint8_t {
  kPublic,  // no credentials needed: probes, the web UI's files
  kBrowse,  // songs, albums, artists, cluster status, covers
  kSearch,
  kStream,
  kUpload,
  kDeleteOwn,
  kDeleteAny,
  kAdmin,  // membership, leadership, replication factor, users
  kMetrics,
  kSelf,  // any signed-in caller, whatever its roles: its own session, tokens and password
};

// kMetrics is for scrapers (Prometheus): /metrics and nothing else of the catalog, so the token
// in a monitoring Secret cannot read, upload or administer anything.
enum class Role : uint8_t { kListener, kUploader, kAdmin, kMetrics };

const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);  // "listener", "uploader", "admin", "metrics"
const char* PermissionName(Permission permission);
bool RoleGrants(Role role, Permission permission);

struct RouteRule {
  std::string_view method;   // "GET", "POST", ... (HEAD follows GET)
  std::string_view pattern;  // as registered on the router, e.g. "/music/songs/{file_id}"
  Permission permission;
};

// Every route's rule. The UI's files (the router's fallback) are kPublic: the page must load
// before anyone can log in; the API they call is not.
std::span<const RouteRule> RouteRules();
std::optional<Permission> RuleFor(std::string_view method, std::string_view pattern);

struct Principal {
  std::string name;         // "" for an anonymous caller
  std::vector<Role> roles;  // empty for an anonymous caller
  // How the caller proved it: "session", "token" (an API token), "oidc", "api-token" (the static
  // admin token); "" when anonymous. With "session" and "token", the credential's record id.
  std::string via;
  std::string credential_id;
  bool authenticated() const { return !name.empty(); }
  bool Has(Permission permission) const;
};

enum class Decision : uint8_t {
  kAllow,
  kUnauthenticated,  // 401: credentials needed (or the ones sent were not valid)
  kForbidden,        // 403: the caller is known but its roles do not allow this, or no rule
};

// `pattern`: the matched route's pattern; nullopt for a request no route matched (the fallback,
// i.e. the UI's files, for GET and HEAD; anything else was already a 404 or 405).
Decision Decide(const Principal& who, std::string_view method, std::optional<std::string_view> pattern);

}  // namespace dispotify::auth
