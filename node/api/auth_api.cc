#include "node/api/auth_api.h"

#include <cpprest/json.h>

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "common/audit/entry.h"
#include "common/logging.h"
#include "common/sha256.h"
#include "node/api/rest_api.h"
#include "node/audit/audit_log.h"
#include "node/auth/key_cache.h"
#include "node/auth/oidc_login.h"
#include "node/catalog/commands.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/proposer.h"

namespace dispotify::api {
namespace {

namespace json = web::json;
using http::BodyReader;
using http::JsonError;
using http::Request;
using http::Response;

constexpr auto kCommitTimeout = std::chrono::seconds(10);
constexpr int kMaxConcurrentHashes = 4;
constexpr int64_t kDefaultTokenLifetimeS = 30LL * 24 * 3600;
constexpr int64_t kMaxTokenLifetimeS = 366LL * 24 * 3600;

const auth::Principal& Caller(const Request& req) {
  static const auth::Principal kAnonymous;
  return req.principal ? *req.principal : kAnonymous;
}

json::value RolesJson(const std::vector<auth::Role>& roles) {
  std::vector<json::value> out;
  for (const auto& n : auth::RoleNames(roles)) out.push_back(json::value::string(n));
  return json::value::array(out);
}

Response JsonOk(int status, const json::value& v) {
  return Response::Json(status, v.serialize());
}

// "ip:port" → "ip" (the port changes with every connection).
std::string ClientOf(const Request& req) {
  const std::string& a = req.remote_address;
  const size_t colon = a.rfind(':');
  return colon == std::string::npos ? a : a.substr(0, colon);
}

Result<std::string> StringField(const json::value& obj, const std::string& key, bool required) {
  if (!obj.has_field(key)) {
    if (required) return Status::InvalidArgument("missing field '" + key + "'");
    return std::string();
  }
  if (!obj.at(key).is_string()) return Status::InvalidArgument("'" + key + "' must be a string");
  return obj.at(key).as_string();
}

Result<std::optional<std::vector<auth::Role>>> RolesField(const json::value& obj) {
  if (!obj.has_field("roles")) return std::optional<std::vector<auth::Role>>();
  if (!obj.at("roles").is_array()) return Status::InvalidArgument("'roles' must be an array of role names");
  std::vector<std::string> names;
  for (const auto& v : obj.at("roles").as_array()) {
    if (!v.is_string()) return Status::InvalidArgument("'roles' must be an array of role names");
    names.push_back(v.as_string());
  }
  auto roles = auth::ParseRoles(names);
  if (!roles.ok()) return roles.status();
  return std::optional<std::vector<auth::Role>>(std::move(roles).value());
}

std::string JoinRoles(const std::vector<auth::Role>& roles) {
  std::string out;
  for (const auto& n : auth::RoleNames(roles)) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "none" : out;
}

Response ProposeError(const Status& s) {
  return rest::Error(s);
}

json::value UserJson(const auth::UserRecord& u) {
  json::value v = json::value::object();
  v["name"] = json::value::string(u.name);
  v["roles"] = RolesJson(u.roles);
  v["disabled"] = json::value::boolean(u.disabled);
  v["created_ms"] = json::value::number(u.created_ms);
  return v;
}

json::value TokenJson(const auth::TokenRecord& t) {
  json::value v = json::value::object();
  v["id"] = json::value::string(t.id);
  v["owner"] = json::value::string(t.owner);
  v["name"] = json::value::string(t.name);
  v["roles"] = RolesJson(t.roles);
  v["created_ms"] = json::value::number(t.created_ms);
  v["expires_ms"] = json::value::number(t.expires_ms);
  return v;
}

std::string SessionCookie(std::string_view value, int64_t max_age_s, bool secure) {
  std::string c = std::string(kSessionCookie) + "=" + std::string(value) +
                  "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (secure) c += "; Secure";
  return c;
}

// Not HttpOnly: the page's script reads it and sends it back as X-CSRF-Token. A page of another
// origin cannot read it, and a forged request that carries it along gains nothing: the header is
// what is checked.
std::string CsrfCookie(std::string_view value, int64_t max_age_s, bool secure) {
  std::string c = std::string(kCsrfCookie) + "=" + std::string(value) +
                  "; Path=/; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (secure) c += "; Secure";
  return c;
}

bool ChangesState(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

}  // namespace

// The catalog's records through the store (reads of this node's applied state: a revocation
// reaches every node within the replication lag, milliseconds on a healthy cluster).
//
// A token or session made through another node a moment ago may not have reached this one yet:
// a miss first catches up with the leader's commit (a read barrier) and looks again, so a
// credential works on every node as soon as it is handed out. Made-up tokens miss too, so the
// barriers a miss may start are bounded per node (kMissCatchUps a second; concurrent ones share
// a read round): past that, a miss is answered from the local state alone.
class AuthApi::Source final : public auth::CredentialSource {
 public:
  static constexpr double kMissCatchUps = 20;

  Source(catalog::MetadataStore* store, catalog::Proposer* proposer)
      : store_(store),
        proposer_(proposer),
        miss_catch_ups_(auth::RateLimiter::Options{.rate_per_s = kMissCatchUps, .burst = kMissCatchUps}) {}
  Result<std::optional<auth::UserRecord>> FindUser(std::string_view name) override {
    if (!catalog::IsValidUserName(name)) return std::optional<auth::UserRecord>();
    auto v = store_->GetSetting(catalog::UserKey(name));
    if (!v.ok()) return v.status();
    if (!v->has_value()) return std::optional<auth::UserRecord>();
    auto u = auth::DecodeUser(**v);
    if (!u.ok()) return u.status();
    return std::optional<auth::UserRecord>(std::move(u).value());
  }
  Result<std::optional<auth::TokenRecord>> FindToken(std::string_view id) override {
    auto v = store_->GetSetting(catalog::TokenKey(id));
    if (v.ok() && !v->has_value() && proposer_ != nullptr && miss_catch_ups_.Take("miss") == 0 &&
        proposer_->CatchUp(kMissCatchUpTimeout).ok()) {
      v = store_->GetSetting(catalog::TokenKey(id));
    }
    if (!v.ok()) return v.status();
    if (!v->has_value()) return std::optional<auth::TokenRecord>();
    auto t = auth::DecodeToken(**v);
    if (!t.ok()) return t.status();
    return std::optional<auth::TokenRecord>(std::move(t).value());
  }

 private:
  static constexpr std::chrono::milliseconds kMissCatchUpTimeout{1000};
  catalog::MetadataStore* store_;
  catalog::Proposer* proposer_;
  auth::RateLimiter miss_catch_ups_;
};

AuthApi::AuthApi(AuthApiOptions options, catalog::MetadataStore* store, catalog::Proposer* proposer)
    : options_(std::move(options)),
      store_(store),
      proposer_(proposer),
      source_(std::make_unique<Source>(store, proposer)),
      login_per_client_(options_.login_per_client),
      failures_per_user_(options_.failures_per_user),
      uploads_per_user_(options_.uploads_per_user) {
  auth::Authenticator::Options a;
  a.static_admin_token = options_.static_admin_token;
  a.oidc = options_.oidc;
  a.oidc_policy = options_.oidc_policy;
  a.now_ms = options_.now_ms;
  authenticator_ = std::make_unique<auth::Authenticator>(std::move(a), source_.get());
  auto dummy = auth::HashPassword("not a password of anyone", options_.argon2);
  if (dummy.ok()) dummy_hash_ = std::move(dummy).value();
}

AuthApi::~AuthApi() = default;

std::optional<Response> AuthApi::Admit(Request& req, std::optional<std::string_view> pattern) {
  auth::Presented presented;
  if (auto h = req.Header("Authorization")) {
    presented.bearer = auth::BearerOf(*h);
    if (!presented.bearer) {
      ++stats_.unauthenticated;
      AuditDenial(req, "invalid_request", audit::kAnonymous);
      Response r = JsonError(401, "invalid_token", "Authorization must be \"Bearer <token>\"");
      r.AddHeader("WWW-Authenticate", "Bearer error=\"invalid_request\"");
      return r;
    }
  }
  for (std::string_view cookie : req.headers.GetAll("Cookie")) {
    if (auto v = auth::CookieValue(cookie, kSessionCookie)) presented.session = std::move(v);
  }
  // Login and logout ignore a stale session cookie: they are how one replaces or drops it.
  // So do the OIDC login's two steps, and the login page's question of how to sign in.
  const bool session_optional =
      pattern && (*pattern == "/auth/login" || *pattern == "/auth/logout" || *pattern == "/auth/oidc/login" ||
                  *pattern == "/auth/oidc/callback" || *pattern == "/auth/config");
  if (session_optional && !presented.bearer) presented.session.reset();

  auto outcome = authenticator_->Authenticate(presented);
  if (auto* err = std::get_if<auth::AuthError>(&outcome)) {
    if (err->unavailable) {
      DLOG_INFO << "auth: cannot check the credentials of " << req.method << " " << req.path
                << " now: " << err->code << " (" << err->message << ")";
      Response r = JsonError(503, err->code, err->message);
      r.AddHeader("Retry-After", "2");
      return r;
    }
    ++stats_.unauthenticated;
    AuditDenial(req, err->code, audit::kAnonymous);
    DLOG_INFO << "auth: refused " << req.method << " " << req.path << " from " << req.remote_address << ": "
              << err->code;
    Response r = JsonError(401, err->code, err->message);
    r.AddHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    if (presented.session && !presented.bearer)
      r.AddHeader("Set-Cookie", SessionCookie("", 0, options_.secure_cookie));
    return r;
  }
  auto& who = std::get<auth::Authenticated>(outcome);
  auto principal = std::make_shared<auth::Principal>(std::move(who.principal));
  switch (who.via) {
    case auth::Via::kAnonymous: break;
    case auth::Via::kStaticToken: principal->via = "api-token"; break;
    case auth::Via::kApiToken: principal->via = "token"; break;
    case auth::Via::kSession: principal->via = "session"; break;
    case auth::Via::kOidc: principal->via = "oidc"; break;
  }
  principal->credential_id = who.token_id;

  switch (auth::Decide(*principal, req.method, pattern)) {
    case auth::Decision::kAllow: break;
    case auth::Decision::kUnauthenticated: {
      ++stats_.unauthenticated;
      AuditDenial(req, "unauthenticated", audit::kAnonymous);
      Response r = JsonError(401, "unauthenticated", "sign in, or send Authorization: Bearer <token>");
      r.AddHeader("WWW-Authenticate", "Bearer");
      return r;
    }
    case auth::Decision::kForbidden:
      ++stats_.forbidden;
      AuditDenial(req, "forbidden", principal->name);
      DLOG_INFO << "auth: " << principal->name << " may not " << req.method << " " << req.path;
      return JsonError(403, "forbidden",
                       "\"" + principal->name + "\" may not " + req.method + " " +
                           std::string(pattern.value_or(req.path)));
  }
  if (who.via == auth::Via::kSession && ChangesState(req.method)) {
    auto sent = req.Header(kCsrfHeader);
    if (!sent || who.csrf_sha256.empty() || !auth::ConstantTimeEquals(Sha256Hex(*sent), who.csrf_sha256)) {
      ++stats_.forbidden;
      AuditDenial(req, "csrf", principal->name);
      return JsonError(403, "csrf",
                       "a change made with the session cookie needs the X-CSRF-Token header given at login");
    }
  }
  if (pattern && *pattern == "/music/upload" && principal->authenticated()) {
    if (uint32_t wait = uploads_per_user_.Take("user:" + principal->name); wait > 0) {
      AuditDenial(req, "rate_limited", principal->name);
      return TooMany(wait, "uploads");
    }
  }
  req.principal = std::move(principal);
  return std::nullopt;
}

void AuthApi::Audit(uint8_t action, bool ok, std::string_view actor, const Request& req,
                    std::string_view target, std::string_view code, std::string_view detail) {
  if (options_.audit == nullptr) return;
  options_.audit->Record(static_cast<audit::Action>(action),
                         ok ? audit::Outcome::kOk : audit::Outcome::kDenied, actor, ClientOf(req), target,
                         code, detail, req.request_id);
}

void AuthApi::AuditDenial(const Request& req, std::string_view reason, std::string_view actor) {
  if (options_.audit != nullptr) options_.audit->Deny(ClientOf(req), reason, actor);
}

Response AuthApi::TooMany(uint32_t retry_after_s, std::string_view what) {
  ++stats_.rate_limited;
  Response r =
      JsonError(429, "rate_limited",
                "too many " + std::string(what) + "; retry in " + std::to_string(retry_after_s) + " s");
  r.AddHeader("Retry-After", std::to_string(retry_after_s));
  return r;
}

Result<std::string> AuthApi::HashBounded(std::string_view password) {
  if (hashing_.fetch_add(1) >= kMaxConcurrentHashes) {
    hashing_.fetch_sub(1);
    return Status::Unavailable("busy");
  }
  auto h = auth::HashPassword(password, options_.argon2);
  hashing_.fetch_sub(1);
  return h;
}

Result<bool> AuthApi::VerifyBounded(std::string_view encoded, std::string_view password) {
  if (hashing_.fetch_add(1) >= kMaxConcurrentHashes) {
    hashing_.fetch_sub(1);
    return Status::Unavailable("busy");
  }
  auto ok = auth::VerifyPassword(encoded, password);
  hashing_.fetch_sub(1);
  return ok;
}

Result<bool> AuthApi::BootstrapAdmin(std::string_view name, std::string_view password) {
  if (!catalog::IsValidUserName(name)) return Status::InvalidArgument("invalid admin name");
  auto any = store_->ListSettings(catalog::kUserKeyPrefix, "", 1);
  if (!any.ok()) return any.status();
  if (!any->empty()) return false;
  auto hash = auth::HashPassword(password, options_.argon2);
  if (!hash.ok()) return hash.status();
  auth::UserRecord u;
  u.name = std::string(name);
  u.roles = {auth::Role::kAdmin};
  u.password_hash = std::move(hash).value();
  u.created_ms = options_.now_ms();
  auto r = proposer_->Propose(catalog::PutUserCmd{u.name, auth::EncodeUser(u), false, true}, kCommitTimeout);
  if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) return false;
  if (!r.ok()) return r.status();
  return true;
}

Result<uint64_t> AuthApi::SweepExpired() {
  const int64_t now = options_.now_ms();
  uint64_t removed = 0;
  std::string after;
  while (true) {
    auto page = store_->ListSettings(catalog::kTokenKeyPrefix, after, 1000);
    if (!page.ok()) return page.status();
    for (const auto& [key, value] : *page) {
      auto t = auth::DecodeToken(value);
      if (!t.ok() || t->expires_ms == 0 || t->expires_ms > now) continue;
      auto r = proposer_->Propose(catalog::RevokeTokenCmd{t->id, t->owner}, kCommitTimeout);
      if (!r.ok()) return r.status();
      ++removed;
    }
    if (page->size() < 1000) break;
    after = page->back().first;
  }
  return removed;
}

Response AuthApi::Login(Request& req, BodyReader& body) {
  auto obj = rest::ParseJsonObject(body, {"name", "password"});
  if (!obj.ok()) return rest::Error(obj.status());
  auto name = StringField(*obj, "name", true);
  auto password = StringField(*obj, "password", true);
  if (!name.ok()) return rest::Error(name.status());
  if (!password.ok()) return rest::Error(password.status());
  if (uint32_t wait = login_per_client_.Take("ip:" + ClientOf(req)); wait > 0) {
    AuditDenial(req, "rate_limited", *name);
    return TooMany(wait, "logins");
  }
  if (uint32_t wait = failures_per_user_.Peek("user:" + *name); wait > 0) {
    AuditDenial(req, "rate_limited", *name);
    return TooMany(wait, "failed logins for this user");
  }
  // A user (or a password change) committed through another node may not be applied here yet:
  // catch up with the leader's commit first (a read barrier), so "create, then sign in anywhere"
  // works. Every login pays it, found or not, so its time does not tell names apart; without a
  // quorum the login goes on with this node's copy.
  (void)proposer_->CatchUp(std::chrono::seconds(2));
  auto user = source_->FindUser(*name);
  if (!user.ok()) return rest::Error(Status::Unavailable(user.status().message()));
  // An unknown user costs one hash too, so the answer's timing does not tell names apart.
  const std::string& encoded =
      user->has_value() && !(*user)->password_hash.empty() ? (*user)->password_hash : dummy_hash_;
  auto match = VerifyBounded(encoded, *password);
  if (!match.ok() && match.status().code() == StatusCode::kUnavailable) return TooMany(1, "logins at once");
  const bool ok =
      match.ok() && *match && user->has_value() && !(*user)->password_hash.empty() && !(*user)->disabled;
  if (!ok) {
    ++stats_.logins_failed;
    (void)failures_per_user_.Take("user:" + *name);
    DLOG_INFO << "auth: failed login for \"" << *name << "\" from " << req.remote_address;
    Audit(static_cast<uint8_t>(audit::Action::kLoginFailed), false, *name, req, *name, "bad_credentials");
    return JsonError(401, "bad_credentials", "wrong user name or password");
  }
  const auth::UserRecord& u = **user;
  auto session = StartSession(u.name, u.roles);
  if (!session.ok()) return ProposeError(session.status());
  ++stats_.logins_ok;
  Audit(static_cast<uint8_t>(audit::Action::kLogin), true, u.name, req, u.name, "ok");
  json::value v = json::value::object();
  v["name"] = json::value::string(u.name);
  v["roles"] = RolesJson(u.roles);
  v["csrf_token"] = json::value::string(session->csrf);
  v["expires_ms"] = json::value::number(session->expires_ms);
  Response resp = JsonOk(200, v);
  resp.AddHeader("Set-Cookie",
                 SessionCookie(session->secret, options_.session_ttl.count(), options_.secure_cookie));
  resp.AddHeader("Cache-Control", "no-store");
  return resp;
}

Result<AuthApi::NewSession> AuthApi::StartSession(const std::string& user,
                                                  const std::vector<auth::Role>& roles) {
  auto secret = auth::MakeSecret(auth::kSessionPrefix);
  if (!secret.ok()) return secret.status();
  auto csrf = auth::MakeSecret("");
  if (!csrf.ok()) return csrf.status();
  auth::TokenRecord t;
  t.id = secret->id;
  t.owner = user;
  t.name = "session";
  t.kind = auth::TokenKind::kSession;
  t.roles = roles;
  t.created_ms = options_.now_ms();
  t.expires_ms =
      t.created_ms + std::chrono::duration_cast<std::chrono::milliseconds>(options_.session_ttl).count();
  t.csrf_sha256 = Sha256Hex(csrf->secret);
  auto r = proposer_->Propose(catalog::PutTokenCmd{t.id, t.owner, auth::EncodeToken(t)}, kCommitTimeout);
  if (!r.ok()) return r.status();
  return NewSession{std::move(secret->secret), std::move(csrf->secret), t.expires_ms};
}

namespace {

std::string OidcLoginCookie(std::string_view value, int64_t max_age_s, bool secure) {
  std::string c = std::string(kOidcLoginCookie) + "=" + std::string(value) +
                  "; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age_s);
  if (secure) c += "; Secure";
  return c;
}

// The user an OIDC subject logs in as: "oidc-<subject>" when the subject is made of the
// characters user names allow, else "oidc-" and 40 hex digits of its SHA-256 (a URL, "auth0|1").
std::string OidcUserName(const std::string& subject) {
  std::string name = "oidc-" + subject;
  if (catalog::IsValidUserName(name)) return name;
  return "oidc-" + Sha256Hex(subject).substr(0, 40);
}

}  // namespace

Response AuthApi::OidcLoginStart(Request& req, BodyReader&) {
  const auto& o = options_.oidc_login;
  if (options_.oidc == nullptr || o.client_id.empty())
    return JsonError(404, "oidc_login_off", "no OIDC login is configured on this cluster");
  if (uint32_t wait = login_per_client_.Take("ip:" + ClientOf(req)); wait > 0) return TooMany(wait, "logins");
  auto discovery = options_.oidc->Discovered();
  if (!discovery.ok() || discovery->authorization_endpoint.empty()) {
    Response r = JsonError(503, "oidc_unavailable",
                           discovery.ok() ? "the issuer's discovery document has no authorization_endpoint"
                                          : discovery.status().message());
    r.AddHeader("Retry-After", "2");
    return r;
  }
  auto start = auth::StartLogin();
  if (!start.ok()) return rest::Error(start.status());
  auth::AuthorizationRequest a;
  a.authorization_endpoint = discovery->authorization_endpoint;
  a.client_id = o.client_id;
  a.redirect_uri = o.redirect_uri;
  a.scope = o.scopes;
  a.audience = options_.oidc_policy.audience;
  Response resp = Response::Empty(302);
  resp.AddHeader("Location", auth::AuthorizationUrl(a, *start));
  // The state and the verifier stay with this browser: the callback compares the state and
  // sends the verifier, so a code that reaches another browser (or an attacker) is useless.
  resp.AddHeader("Set-Cookie",
                 OidcLoginCookie(start->state + "." + start->code_verifier, 600, options_.secure_cookie));
  resp.AddHeader("Cache-Control", "no-store");
  return resp;
}

Response AuthApi::OidcCallback(Request& req, BodyReader&) {
  const auto& o = options_.oidc_login;
  if (options_.oidc == nullptr || o.client_id.empty())
    return JsonError(404, "oidc_login_off", "no OIDC login is configured on this cluster");
  std::optional<std::string> cookie;
  for (std::string_view header : req.headers.GetAll("Cookie")) {
    if (auto v = auth::CookieValue(header, kOidcLoginCookie)) cookie = std::move(v);
  }
  const auto state = req.Query("state");
  const size_t dot = cookie ? cookie->find('.') : std::string::npos;
  // Login CSRF: a callback this browser did not start (no cookie, or another login's state) is
  // refused before anything is sent to the issuer.
  if (dot == std::string::npos || !state || !auth::ConstantTimeEquals(cookie->substr(0, dot), *state)) {
    DLOG_INFO << "auth: OIDC callback from " << req.remote_address << " refused: state mismatch";
    return JsonError(401, "oidc_state_mismatch", "this login was not started by this browser; start again");
  }
  const std::string verifier = cookie->substr(dot + 1);
  if (auto error = req.Query("error")) {
    // Anyone can send a browser here with any error: only an error code's characters reach the log.
    std::string code(error->substr(0, 64));
    for (char& c : code) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') c = '?';
    }
    DLOG_INFO << "auth: OIDC login from " << req.remote_address << " refused by the issuer: " << code;
    return JsonError(401, "oidc_denied", "the issuer refused the login: " + code);
  }
  const auto code = req.Query("code");
  if (!code || code->empty()) return JsonError(400, "oidc_no_code", "the issuer's answer has no code");
  auto discovery = options_.oidc->Discovered();
  if (!discovery.ok() || discovery->token_endpoint.empty() || !o.post_form) {
    Response r = JsonError(503, "oidc_unavailable",
                           discovery.ok() ? "the issuer's discovery document has no token_endpoint"
                                          : discovery.status().message());
    r.AddHeader("Retry-After", "2");
    return r;
  }
  auto answer =
      o.post_form(discovery->token_endpoint,
                  auth::TokenRequestBody(o.client_id, o.client_secret, *code, o.redirect_uri, verifier));
  if (!answer.ok()) {
    DLOG_WARN << "auth: the OIDC token request failed: " << answer.status().ToString();
    Response r = JsonError(503, "oidc_unavailable", "the issuer's token endpoint cannot be reached");
    r.AddHeader("Retry-After", "2");
    return r;
  }
  auto tokens = auth::ParseTokenResponse(*answer);
  if (!tokens.ok()) {
    DLOG_INFO << "auth: OIDC login from " << req.remote_address << " refused: " << tokens.status().message();
    return JsonError(401, "oidc_code_refused", tokens.status().message());
  }
  // The access token is held to what a bearer token is (issuer, audience, time, signature), and
  // its subject and roles are the session's.
  auth::JwtResult claims =
      options_.oidc->Validate(tokens->access_token, options_.oidc_policy, options_.now_ms() / 1000);
  if (!claims.ok()) {
    const std::string reason = "jwt_" + std::string(auth::JwtErrorName(claims.code()));
    DLOG_INFO << "auth: OIDC login from " << req.remote_address << " refused: " << reason;
    if (claims.code() == auth::JwtError::kKeysUnavailable) {
      Response r = JsonError(503, reason, claims.failure().detail);
      r.AddHeader("Retry-After", "2");
      return r;
    }
    return JsonError(401, reason, claims.failure().detail);
  }
  std::vector<auth::Role> roles;
  for (const auto& name : claims->roles) {
    if (auto role = auth::ParseRole(name)) roles.push_back(*role);
  }
  std::sort(roles.begin(), roles.end());
  roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  const std::string name = OidcUserName(claims->subject);
  auto existing = source_->FindUser(name);
  if (!existing.ok()) return rest::Error(Status::Unavailable(existing.status().message()));
  if (existing->has_value() && !(*existing)->oidc) {
    return JsonError(409, "oidc_name_taken",
                     "a local user is named \"" + name + "\"; an admin must rename or delete it");
  }
  if (existing->has_value() && (*existing)->disabled) {
    return JsonError(403, "user_disabled", "this user is disabled");
  }
  auth::UserRecord u = existing->has_value() ? **existing : auth::UserRecord{};
  u.name = name;
  u.roles = roles;
  u.oidc = true;
  if (u.created_ms == 0) u.created_ms = options_.now_ms();
  // A new user only if absent, so a local user created meanwhile is never overwritten.
  auto put = proposer_->Propose(catalog::PutUserCmd{u.name, auth::EncodeUser(u), !existing->has_value()},
                                kCommitTimeout);
  if (!put.ok()) return ProposeError(put.status());
  auto session = StartSession(u.name, roles);
  if (!session.ok()) return ProposeError(session.status());
  ++stats_.logins_ok;
  Audit(static_cast<uint8_t>(audit::Action::kLogin), true, u.name, req, u.name, "ok", "oidc");
  DLOG_INFO << "auth: " << u.name << " logged in through the OIDC issuer from " << req.remote_address;
  Response resp = Response::Empty(302);
  resp.AddHeader("Location", "/");
  resp.AddHeader("Set-Cookie",
                 SessionCookie(session->secret, options_.session_ttl.count(), options_.secure_cookie));
  resp.AddHeader("Set-Cookie",
                 CsrfCookie(session->csrf, options_.session_ttl.count(), options_.secure_cookie));
  resp.AddHeader("Set-Cookie", OidcLoginCookie("", 0, options_.secure_cookie));
  resp.AddHeader("Cache-Control", "no-store");
  return resp;
}

Response AuthApi::Logout(Request& req, BodyReader&) {
  // The guard dropped the cookie for this route; read it again to end that session.
  std::optional<std::string> session;
  for (std::string_view cookie : req.headers.GetAll("Cookie")) {
    if (auto v = auth::CookieValue(cookie, kSessionCookie)) session = std::move(v);
  }
  if (session) {
    const std::string id = auth::SecretId(*session);
    auto t = source_->FindToken(id);
    if (t.ok() && t->has_value() && (*t)->kind == auth::TokenKind::kSession) {
      auto r = proposer_->Propose(catalog::RevokeTokenCmd{id, (*t)->owner}, kCommitTimeout);
      if (!r.ok()) return ProposeError(r.status());
      Audit(static_cast<uint8_t>(audit::Action::kLogout), true, (*t)->owner, req, (*t)->owner, "ok");
    }
  }
  Response resp = Response::Empty(204);
  resp.AddHeader("Set-Cookie", SessionCookie("", 0, options_.secure_cookie));
  resp.AddHeader("Set-Cookie", CsrfCookie("", 0, options_.secure_cookie));
  return resp;
}

std::string OidcProviderName(std::string_view issuer) {
  const size_t scheme = issuer.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = issuer.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  // user:password@ (not allowed in an issuer, but never shown if present)
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  return std::string(rest);
}

std::string AuthConfigJson(bool oidc_login, std::string_view issuer) {
  json::value oidc = json::value::object();
  oidc["enabled"] = json::value::boolean(oidc_login);
  if (oidc_login) {
    oidc["login_url"] = json::value::string("/auth/oidc/login");
    oidc["name"] = json::value::string(OidcProviderName(issuer));
  }
  json::value v = json::value::object();
  v["password"] = json::value::boolean(true);
  v["oidc"] = oidc;
  return v.serialize();
}

Response AuthApi::Config(Request&, BodyReader&) {
  const bool oidc_login = options_.oidc != nullptr && !options_.oidc_login.client_id.empty();
  Response r = Response::Json(200, AuthConfigJson(oidc_login, options_.oidc_policy.issuer));
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

Response AuthApi::Me(Request& req, BodyReader&) {
  const auth::Principal& who = Caller(req);
  json::value v = json::value::object();
  v["name"] = json::value::string(who.name);
  v["roles"] = RolesJson(who.roles);
  v["via"] = json::value::string(who.via);
  Response r = JsonOk(200, v);
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

Response AuthApi::ChangePassword(Request& req, BodyReader& body) {
  const auth::Principal& who = Caller(req);
  auto obj = rest::ParseJsonObject(body, {"current", "new"});
  if (!obj.ok()) return rest::Error(obj.status());
  auto current = StringField(*obj, "current", true);
  auto next = StringField(*obj, "new", true);
  if (!current.ok()) return rest::Error(current.status());
  if (!next.ok()) return rest::Error(next.status());
  auto user = source_->FindUser(who.name);
  if (!user.ok()) return rest::Error(Status::Unavailable(user.status().message()));
  if (!user->has_value())
    return JsonError(400, "not_a_user", "\"" + who.name + "\" is not a user of this cluster");
  if (uint32_t wait = failures_per_user_.Peek("user:" + who.name); wait > 0)
    return TooMany(wait, "failed attempts");
  auto match = VerifyBounded((*user)->password_hash, *current);
  if (!match.ok() && match.status().code() == StatusCode::kUnavailable)
    return TooMany(1, "password checks at once");
  if (!match.ok() || !*match) {
    (void)failures_per_user_.Take("user:" + who.name);
    Audit(static_cast<uint8_t>(audit::Action::kPasswordChanged), false, who.name, req, who.name,
          "bad_credentials");
    return JsonError(403, "bad_credentials", "the current password is wrong");
  }
  auto hash = HashBounded(*next);
  if (!hash.ok()) {
    if (hash.status().code() == StatusCode::kUnavailable) return TooMany(1, "password changes at once");
    return rest::Error(hash.status());
  }
  auth::UserRecord u = **user;
  u.password_hash = std::move(hash).value();
  auto r = proposer_->Propose(catalog::PutUserCmd{u.name, auth::EncodeUser(u)}, kCommitTimeout);
  if (!r.ok()) return ProposeError(r.status());
  Audit(static_cast<uint8_t>(audit::Action::kPasswordChanged), true, who.name, req, u.name, "ok");
  return Response::Empty(204);
}

Response AuthApi::ListTokens(Request& req, BodyReader&) {
  const auth::Principal& who = Caller(req);
  std::string owner = who.name;
  if (auto u = req.Query("user")) {
    if (*u != who.name && !who.Has(auth::Permission::kAdmin)) {
      return JsonError(403, "forbidden", "only an admin may list another user's tokens");
    }
    owner = std::string(*u);
  }
  if (!catalog::IsValidUserName(owner)) return JsonError(400, "invalid_argument", "invalid user name");
  std::vector<json::value> items;
  const std::string prefix = catalog::UserTokenPrefix(owner);
  std::string after;
  while (true) {
    auto page = store_->ListSettings(prefix, after, 1000);
    if (!page.ok()) return rest::Error(Status::Unavailable(page.status().message()));
    for (const auto& [key, unused] : *page) {
      auto t = source_->FindToken(std::string_view(key).substr(prefix.size()));
      if (!t.ok()) return rest::Error(Status::Unavailable(t.status().message()));
      if (t->has_value() && (*t)->kind == auth::TokenKind::kApi) items.push_back(TokenJson(**t));
    }
    if (page->size() < 1000) break;
    after = page->back().first;
  }
  json::value v = json::value::object();
  v["items"] = json::value::array(items);
  return JsonOk(200, v);
}

Response AuthApi::CreateToken(Request& req, BodyReader& body) {
  const auth::Principal& who = Caller(req);
  auto obj = rest::ParseJsonObject(body, {"name", "roles", "expires_in_s"});
  if (!obj.ok()) return rest::Error(obj.status());
  auto name = StringField(*obj, "name", true);
  if (!name.ok()) return rest::Error(name.status());
  if (name->empty() || name->size() > 128)
    return JsonError(400, "invalid_argument", "'name' must be 1..128 bytes");
  auto roles = RolesField(*obj);
  if (!roles.ok()) return rest::Error(roles.status());
  auto lifetime = rest::JsonUint(*obj, "expires_in_s", false, kMaxTokenLifetimeS);
  if (!lifetime.ok()) return rest::Error(lifetime.status());
  auto user = source_->FindUser(who.name);
  if (!user.ok()) return rest::Error(Status::Unavailable(user.status().message()));
  if (!user->has_value()) {
    return JsonError(400, "not_a_user",
                     "only users of this cluster can create tokens (\"" + who.name + "\" is not one)");
  }
  const std::vector<auth::Role> wanted = roles->value_or(who.roles);
  if (auth::IntersectRoles(wanted, who.roles).size() != wanted.size()) {
    return JsonError(403, "forbidden", "a token can only carry roles its owner holds");
  }
  auto secret = auth::MakeSecret(auth::kApiTokenPrefix);
  if (!secret.ok()) return rest::Error(secret.status());
  auth::TokenRecord t;
  t.id = secret->id;
  t.owner = who.name;
  t.name = *name;
  t.kind = auth::TokenKind::kApi;
  t.roles = wanted;
  t.created_ms = options_.now_ms();
  const int64_t lifetime_s = *lifetime == 0 ? kDefaultTokenLifetimeS : static_cast<int64_t>(*lifetime);
  t.expires_ms = t.created_ms + lifetime_s * 1000;
  auto r = proposer_->Propose(catalog::PutTokenCmd{t.id, t.owner, auth::EncodeToken(t)}, kCommitTimeout);
  if (!r.ok()) return ProposeError(r.status());
  Audit(static_cast<uint8_t>(audit::Action::kTokenCreated), true, who.name, req, t.owner, "ok",
        "name=" + t.name + " id=" + t.id.substr(0, 12));
  json::value v = TokenJson(t);
  v["token"] = json::value::string(secret->secret);
  Response resp = JsonOk(201, v);
  resp.AddHeader("Cache-Control", "no-store");
  return resp;
}

Response AuthApi::RevokeToken(Request& req, BodyReader&) {
  const auth::Principal& who = Caller(req);
  const std::string id(req.PathParam("id"));
  if (!catalog::IsValidTokenId(id)) return JsonError(400, "invalid_argument", "a token id is 64 hex digits");
  auto t = source_->FindToken(id);
  if (!t.ok()) return rest::Error(Status::Unavailable(t.status().message()));
  // Another user's token reads as absent to a non-admin: ids are not secrets, but there is no
  // reason to confirm them either.
  if (!t->has_value() || ((*t)->owner != who.name && !who.Has(auth::Permission::kAdmin))) {
    return JsonError(404, "not_found", "no such token");
  }
  auto r = proposer_->Propose(catalog::RevokeTokenCmd{id, (*t)->owner}, kCommitTimeout);
  if (!r.ok()) return ProposeError(r.status());
  Audit(static_cast<uint8_t>(audit::Action::kTokenRevoked), true, who.name, req, (*t)->owner, "ok",
        "name=" + (*t)->name + " id=" + id.substr(0, 12));
  return Response::Empty(204);
}

Response AuthApi::ListUsers(Request& req, BodyReader&) {
  auto limit = rest::UintParam(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return rest::Error(limit.status());
  std::string after;
  if (auto a = req.Query("after")) after = catalog::UserKey(*a);
  auto page = store_->ListSettings(catalog::kUserKeyPrefix, after, static_cast<uint32_t>(*limit));
  if (!page.ok()) return rest::Error(Status::Unavailable(page.status().message()));
  std::vector<json::value> items;
  for (const auto& [key, value] : *page) {
    auto u = auth::DecodeUser(value);
    if (!u.ok()) return rest::Error(u.status());
    items.push_back(UserJson(*u));
  }
  json::value v = json::value::object();
  v["items"] = json::value::array(items);
  v["next_after"] = json::value::string(page->size() == *limit && !page->empty()
                                            ? page->back().first.substr(catalog::kUserKeyPrefix.size())
                                            : std::string());
  return JsonOk(200, v);
}

Response AuthApi::CreateUser(Request& req, BodyReader& body) {
  (void)req;
  auto obj = rest::ParseJsonObject(body, {"name", "password", "roles"});
  if (!obj.ok()) return rest::Error(obj.status());
  auto name = StringField(*obj, "name", true);
  auto password = StringField(*obj, "password", true);
  auto roles = RolesField(*obj);
  if (!name.ok()) return rest::Error(name.status());
  if (!password.ok()) return rest::Error(password.status());
  if (!roles.ok()) return rest::Error(roles.status());
  if (!catalog::IsValidUserName(*name)) {
    return JsonError(400, "invalid_argument", "a user name is 1..64 characters of [A-Za-z0-9._@-]");
  }
  auto hash = HashBounded(*password);
  if (!hash.ok()) {
    if (hash.status().code() == StatusCode::kUnavailable) return TooMany(1, "password hashes at once");
    return rest::Error(hash.status());
  }
  auth::UserRecord u;
  u.name = *name;
  u.roles = roles->value_or(std::vector<auth::Role>{auth::Role::kListener});
  u.password_hash = std::move(hash).value();
  u.created_ms = options_.now_ms();
  auto r = proposer_->Propose(catalog::PutUserCmd{u.name, auth::EncodeUser(u), true, false}, kCommitTimeout);
  if (!r.ok()) return ProposeError(r.status());
  Audit(static_cast<uint8_t>(audit::Action::kUserCreated), true, Caller(req).name, req, u.name, "ok",
        "roles=" + JoinRoles(u.roles));
  return JsonOk(201, UserJson(u));
}

Response AuthApi::UpdateUser(Request& req, BodyReader& body) {
  const auth::Principal& who = Caller(req);
  const std::string name(req.PathParam("name"));
  auto obj = rest::ParseJsonObject(body, {"roles", "disabled", "password"});
  if (!obj.ok()) return rest::Error(obj.status());
  auto user = source_->FindUser(name);
  if (!user.ok()) return rest::Error(Status::Unavailable(user.status().message()));
  if (!user->has_value()) return JsonError(404, "not_found", "no user " + name);
  auth::UserRecord u = **user;
  auto roles = RolesField(*obj);
  if (!roles.ok()) return rest::Error(roles.status());
  if (*roles) u.roles = **roles;
  if (obj->has_field("disabled")) {
    if (!obj->at("disabled").is_boolean())
      return JsonError(400, "invalid_argument", "'disabled' must be a boolean");
    u.disabled = obj->at("disabled").as_bool();
  }
  // An admin cannot lock themselves out by accident (another admin can).
  const bool still_admin = std::find(u.roles.begin(), u.roles.end(), auth::Role::kAdmin) != u.roles.end();
  if (name == who.name && (u.disabled || !still_admin)) {
    return JsonError(409, "self_lockout", "you cannot disable yourself or drop your own admin role");
  }
  if (obj->has_field("password")) {
    auto password = StringField(*obj, "password", true);
    if (!password.ok()) return rest::Error(password.status());
    auto hash = HashBounded(*password);
    if (!hash.ok()) {
      if (hash.status().code() == StatusCode::kUnavailable) return TooMany(1, "password hashes at once");
      return rest::Error(hash.status());
    }
    u.password_hash = std::move(hash).value();
  }
  auto r = proposer_->Propose(catalog::PutUserCmd{u.name, auth::EncodeUser(u)}, kCommitTimeout);
  if (!r.ok()) return ProposeError(r.status());
  const auth::UserRecord& before = **user;
  if (before.roles != u.roles) {
    Audit(static_cast<uint8_t>(audit::Action::kRoleChanged), true, who.name, req, u.name, "ok",
          JoinRoles(before.roles) + " -> " + JoinRoles(u.roles));
  }
  if (before.disabled != u.disabled) {
    Audit(static_cast<uint8_t>(audit::Action::kUserDisabled), true, who.name, req, u.name, "ok",
          u.disabled ? "disabled" : "enabled");
  }
  if (before.password_hash != u.password_hash) {
    Audit(static_cast<uint8_t>(audit::Action::kPasswordChanged), true, who.name, req, u.name, "ok",
          "set by an admin");
  }
  return JsonOk(200, UserJson(u));
}

Response AuthApi::DeleteUser(Request& req, BodyReader&) {
  const auth::Principal& who = Caller(req);
  const std::string name(req.PathParam("name"));
  if (name == who.name) return JsonError(409, "self_lockout", "you cannot delete yourself");
  if (!catalog::IsValidUserName(name)) return JsonError(404, "not_found", "no user " + name);
  auto r = proposer_->Propose(catalog::DeleteUserCmd{name}, kCommitTimeout);
  if (!r.ok()) return ProposeError(r.status());
  Audit(static_cast<uint8_t>(audit::Action::kUserDeleted), true, who.name, req, name, "ok");
  return Response::Empty(204);
}

void AddAuthRoutes(AuthApi* api, http::Router* router) {
  using Method = Response (AuthApi::*)(Request&, BodyReader&);
  auto bind = [api](Method m) -> http::Handler {
    return [api, m](Request& req, BodyReader& body) -> Response {
      if (api == nullptr) return JsonError(404, "auth_off", "security is off on this node");
      return (api->*m)(req, body);
    };
  };
  router->Get("/auth/config", bind(&AuthApi::Config));
  router->Post("/auth/login", bind(&AuthApi::Login));
  router->Post("/auth/logout", bind(&AuthApi::Logout));
  router->Get("/auth/me", bind(&AuthApi::Me));
  router->Put("/auth/password", bind(&AuthApi::ChangePassword));
  router->Get("/auth/tokens", bind(&AuthApi::ListTokens));
  router->Post("/auth/tokens", bind(&AuthApi::CreateToken));
  router->Delete("/auth/tokens/{id}", bind(&AuthApi::RevokeToken));
  router->Get("/admin/users", bind(&AuthApi::ListUsers));
  router->Post("/admin/users", bind(&AuthApi::CreateUser));
  router->Put("/admin/users/{name}", bind(&AuthApi::UpdateUser));
  router->Delete("/admin/users/{name}", bind(&AuthApi::DeleteUser));
  router->Get("/auth/oidc/login", bind(&AuthApi::OidcLoginStart));
  router->Get("/auth/oidc/callback", bind(&AuthApi::OidcCallback));
}

}  // namespace dispotify::api
