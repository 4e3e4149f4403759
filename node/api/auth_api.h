#pragma once
// Security at the REST API (issue 13; docs/security.md): the request guard that authenticates and
// authorizes every request before its handler runs, and the routes of users, sessions and tokens.
//
//   GET    /auth/config     public: the sign-ins this node offers, for the login page before anyone
//                           has signed in: {"password": true, "oidc": {"enabled", "login_url",
//                           "name" (the issuer's host, for "Sign in with <name>")}}
//   POST   /auth/login      {"name","password"} → 200 {"name","roles","csrf_token","expires_ms"} and
//                           the session cookie (HttpOnly, SameSite=Strict, Secure unless turned off
//                           for plain-http development); 401 bad_credentials; 429 + Retry-After
//   POST   /auth/logout     ends the caller's session (204; a no-op without one); clears the session
//                           cookie and dispotify_csrf (the web UI keeps the token there, below)
//   GET    /auth/me         {"name","roles","via"}
//   PUT    /auth/password   {"current","new"} (users of this cluster)
//   GET    /auth/tokens     the caller's API tokens (?user= for an admin: another's)
//   POST   /auth/tokens     {"name"[,"roles"][,"expires_in_s"]} → 201 {"token" (shown once),"id",...}
//   DELETE /auth/tokens/{id}  revoke (the owner's, or any for an admin)
//   GET    /admin/users     ?after=&limit=
//   POST   /admin/users     {"name","password","roles"} → 201
//   PUT    /admin/users/{name}  {"roles"|"disabled"|"password"}
//   DELETE /admin/users/{name}  (and every token of theirs)
//   GET    /auth/oidc/login     the browser login through the OIDC issuer (with oidc_client_id):
//                           302 to the issuer's authorization endpoint (Authorization Code with
//                           PKCE S256, node/auth/oidc_login.h), the state and code verifier in a
//                           cookie (HttpOnly, SameSite=Lax so that the issuer's redirect back
//                           carries it, Path=/auth/oidc, 10 minutes)
//   GET    /auth/oidc/callback  ?code&state from the issuer: the state must be the cookie's; the
//                           code is exchanged (with the verifier) for an access token, validated
//                           like a bearer JWT; its subject becomes the user "oidc-<subject>" (made
//                           or updated with the token's roles, no password; never a local user of
//                           that name: 409), which gets a session as a password login does: 302 to
//                           / with the session cookie and the CSRF token in the cookie
//                           dispotify_csrf (readable by the page's script, which sends it back as
//                           X-CSRF-Token: a redirect cannot hand it over in a body)
//
// CSRF: a request authenticated by the session cookie that changes state (any method but GET,
// HEAD, OPTIONS) must carry `X-CSRF-Token` with the token login returned (its SHA-256 is in the
// session's record), else 403 csrf. A page of another origin can make the browser send the cookie
// (SameSite=Strict already stops that in current browsers; this is the second wall) but cannot
// read the token. Bearer-authenticated requests need none: a browser never adds a bearer itself.
//
// Rate limits (per node, token buckets, auth/rate_limiter.h) → 429 with Retry-After:
//   logins per client address: 10 at once, then 1 every 6 s;
//   failed logins per user name: 5, then 1 a minute (a guessing attacker slows to a crawl; the
//   right password still gets through once a minute, from anywhere);
//   uploads per user: 100 at once, then 10 a second.
// At most 4 password hashes run at once (64 MiB each); more wait for a 429.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node/api/http/http_server.h"
#include "node/api/http/router.h"
#include "node/auth/authenticator.h"
#include "node/auth/password.h"
#include "node/auth/rate_limiter.h"

namespace dispotify::catalog {
class MetadataStore;
class Proposer;
}  // namespace dispotify::catalog

namespace dispotify::audit {
class AuditLog;
}  // namespace dispotify::audit

namespace dispotify::api {

inline constexpr std::string_view kSessionCookie = "dispotify_session";
inline constexpr std::string_view kCsrfHeader = "X-CSRF-Token";
inline constexpr std::string_view kCsrfCookie = "dispotify_csrf";
inline constexpr std::string_view kOidcLoginCookie = "dispotify_oidc";

struct AuthApiOptions {
  std::chrono::seconds session_ttl{12 * 3600};
  bool secure_cookie = true;
  auth::Argon2Params argon2;
  std::string static_admin_token;  // api_token: the operator's and Prometheus' credential
  auth::KeyCache* oidc = nullptr;  // not owned; null: OIDC off
  auth::JwtPolicy oidc_policy;
  std::function<int64_t()> now_ms;  // wall clock
  // The browser login through the issuer (with oidc): client_id "" turns it off.
  struct OidcLogin {
    std::string client_id;
    std::string client_secret;  // "": a public client, PKCE only
    std::string redirect_uri;
    std::string scopes = "openid";
    // POST a form, the body of the answer (auth/http_fetcher.h's HttpPostForm in the node).
    std::function<Result<std::string>(const std::string& url, const std::string& form)> post_form;
  } oidc_login;
  auth::RateLimiter::Options login_per_client{1.0 / 6, 10};
  auth::RateLimiter::Options failures_per_user{1.0 / 60, 5};
  auth::RateLimiter::Options uploads_per_user{10, 100};
  audit::AuditLog* audit = nullptr;  // not owned; null: nothing is recorded
};

// Counters for /metrics (dispotify_auth_*).
struct AuthStats {
  std::atomic<uint64_t> logins_ok{0};
  std::atomic<uint64_t> logins_failed{0};
  std::atomic<uint64_t> unauthenticated{0};  // 401s
  std::atomic<uint64_t> forbidden{0};        // 403s
  std::atomic<uint64_t> rate_limited{0};     // 429s
};

class AuthApi final : public http::RequestGuard {
 public:
  // `store` and `proposer` must outlive this.
  AuthApi(AuthApiOptions options, catalog::MetadataStore* store, catalog::Proposer* proposer);
  ~AuthApi() override;

  std::optional<http::Response> Admit(http::Request& request,
                                      std::optional<std::string_view> pattern) override;

  // Creates user `name` as admin with `password` if the cluster has no user yet (the bootstrap
  // admin; a no-op once any user exists). Proposed through Raft: call on the leader. True when
  // this call created the user (false: some user already existed).
  Result<bool> BootstrapAdmin(std::string_view name, std::string_view password);

  // Deletes the records of tokens and sessions that expired (a session that was never logged out
  // of would otherwise stay forever). Leader only; returns how many it removed.
  Result<uint64_t> SweepExpired();

  const AuthStats& stats() const { return stats_; }

  // The route handlers (registered by AddAuthRoutes).
  http::Response Config(http::Request& req, http::BodyReader& body);
  http::Response Login(http::Request& req, http::BodyReader& body);
  http::Response Logout(http::Request& req, http::BodyReader& body);
  http::Response Me(http::Request& req, http::BodyReader& body);
  http::Response ChangePassword(http::Request& req, http::BodyReader& body);
  http::Response ListTokens(http::Request& req, http::BodyReader& body);
  http::Response CreateToken(http::Request& req, http::BodyReader& body);
  http::Response RevokeToken(http::Request& req, http::BodyReader& body);
  http::Response ListUsers(http::Request& req, http::BodyReader& body);
  http::Response CreateUser(http::Request& req, http::BodyReader& body);
  http::Response UpdateUser(http::Request& req, http::BodyReader& body);
  http::Response DeleteUser(http::Request& req, http::BodyReader& body);
  http::Response OidcLoginStart(http::Request& req, http::BodyReader& body);
  http::Response OidcCallback(http::Request& req, http::BodyReader& body);

 private:
  class Source;
  Result<std::string> HashBounded(std::string_view password);
  Result<bool> VerifyBounded(std::string_view encoded, std::string_view password);
  http::Response TooMany(uint32_t retry_after_s, std::string_view what);
  // Records an action in the audit trail (when there is one).
  void Audit(uint8_t action, bool ok, std::string_view actor, const http::Request& req,
             std::string_view target, std::string_view code, std::string_view detail = {});
  // Counts a refused request for the audit trail's aggregated denials.
  void AuditDenial(const http::Request& req, std::string_view reason, std::string_view actor);
  struct NewSession {
    std::string secret;  // the cookie's value
    std::string csrf;    // the token the page sends back as X-CSRF-Token
    int64_t expires_ms = 0;
  };
  // Proposes the record of a new session of `user` with `roles`.
  Result<NewSession> StartSession(const std::string& user, const std::vector<auth::Role>& roles);

  AuthApiOptions options_;
  catalog::MetadataStore* store_;
  catalog::Proposer* proposer_;
  std::unique_ptr<Source> source_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  auth::RateLimiter login_per_client_;
  auth::RateLimiter failures_per_user_;
  auth::RateLimiter uploads_per_user_;
  std::atomic<int> hashing_{0};
  std::string dummy_hash_;  // verified against for unknown users, so they cost what a real one does
  AuthStats stats_;
};

// GET /auth/config's body (pure, so tested without a node): `oidc_login` when the browser login
// through the issuer is configured (an issuer and a client id).
std::string AuthConfigJson(bool oidc_login, std::string_view issuer);
// What the login page's button names the issuer by: the host (and port) of its URL, "" when the
// URL has none. "https://id.example.com/realms/music" → "id.example.com".
std::string OidcProviderName(std::string_view issuer);

// Registers the routes above. `api` null (security off): each answers 404 auth_off.
void AddAuthRoutes(AuthApi* api, http::Router* router);

}  // namespace dispotify::api
