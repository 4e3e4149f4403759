// OIDC bearer tokens at the REST API of a real 3-node cluster, against a real provider (issue 13):
// ORY Hydra (e2e/oidc/install-hydra.sh builds it; SQLite in memory) issues JWT access tokens to
// an OAuth2 client of ours through the client credentials grant, and the nodes validate them
// against Hydra's discovery document and JWKS. Roles come from the scope: Hydra puts the granted
// scopes in the token's `scp` claim, and the nodes run with --oidc-roles-claim scp, so a client
// allowed the scopes "listener uploader" gets exactly the roles it asks for.
//
// Checked: a valid token works (and /auth/me names the client); tokens for another audience,
// expired, not yet valid, naming another issuer, with a tampered signature, with alg none, with
// HS256 keyed with a public key of the issuer, or signed by a key the issuer never published are
// each refused (401) with their own code; a flood of unknown kids costs the issuer a bounded
// number of JWKS fetches; a key rotated at Hydra is followed by the nodes without a restart,
// after the refetch interval. No refusal changes anything: every refused token also tries an
// upload, and only the allowed uploads are ever in the catalog. Where Hydra cannot produce a
// bad token, the test signs one itself (OpenSSL, tests/node/auth/test_signer.h) with a key it
// published in Hydra's JWKS, so that only the claim under test is wrong.
//
// Skipped (loudly) when the Hydra binary is missing, unless DISPOTIFY_REQUIRE_OIDC is set (to
// anything but "" or "0"; scripts/test.sh installs Hydra and sets it): then it fails.

#include <arpa/inet.h>
#include <cpprest/json.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/base64.h"
#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "tests/node/auth/test_signer.h"
#include "tests/support/audio_files.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;
namespace json = web::json;
using auth::testing::TestKey;

constexpr char kStaticToken[] = "static-admin-token-for-the-oidc-test";
constexpr char kAudience[] = "dispotify";
// Hydra publishes the keys of this set too (webfinger.jwks.broadcast_keys): the test puts the
// public half of a key of its own there, to sign tokens with claims Hydra would never issue.
constexpr char kTestKeySet[] = "dispotify.e2e";
constexpr char kWebClient[] = "dispotify-web";

bool Required() {
  const char* v = std::getenv("DISPOTIFY_REQUIRE_OIDC");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

std::string HydraBinary() {
  FILE* p = ::popen(DISPOTIFY_HYDRA_INSTALLER " --print-bin", "r");
  if (p == nullptr) return "";
  char buf[4096];
  std::string out;
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out + "/hydra";
}

json::value Json(const std::string& body) {
  try {
    return json::value::parse(body);
  } catch (const std::exception&) {
    return json::value::null();
  }
}

std::string ErrorCode(const ClientResponse& r) {
  json::value v = Json(r.body);
  if (!v.has_field("error") || !v.at("error").is_object()) return "";
  return v.at("error").at("code").as_string();
}

std::string Bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

std::string FormEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// The JSON of a token's header or payload (part 0 or 1).
json::value TokenPart(const std::string& jwt, int part) {
  const size_t a = jwt.find('.');
  const size_t b = jwt.find('.', a + 1);
  const std::string text = part == 0 ? jwt.substr(0, a) : jwt.substr(a + 1, b - a - 1);
  return Json(Base64UrlDecode(text).value_or(""));
}

std::string Part(const json::value& v) {
  return Base64UrlEncode(v.serialize());
}

// What a browser reads of an answer: the status, where it is sent next, the cookies it is given
// (all of them: the e2e client keeps only the last of a repeated header).
struct BrowserAnswer {
  int status = 0;
  std::string location;
  std::vector<std::string> set_cookies;  // each Set-Cookie value, attributes included
  std::string body;
};

// GET `target` from 127.0.0.1:port on a fresh connection, read to its close.
BrowserAnswer BrowserGet(int port, const std::string& target, const std::string& cookie = "") {
  BrowserAnswer a;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return a;
  }
  std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n";
  if (!cookie.empty()) request += "Cookie: " + cookie + "\r\n";
  request += "\r\n";
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return a;
  a.status = std::stoi(raw.substr(9, 3));
  a.body = raw.substr(head_end + 4);
  size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    const size_t end = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, end - pos);
    pos = end + 2;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "location") a.location = value;
    if (name == "set-cookie") a.set_cookies.push_back(value);
  }
  return a;
}

// The Set-Cookie value (attributes included) that sets cookie `name`, "" when none does.
std::string SetCookie(const BrowserAnswer& a, const std::string& name) {
  for (const auto& c : a.set_cookies) {
    if (c.rfind(name + "=", 0) == 0) return c;
  }
  return "";
}

// The cookie's value in a Set-Cookie value.
std::string CookieValueOf(const std::string& set_cookie) {
  const size_t eq = set_cookie.find('=');
  const size_t end = set_cookie.find(';');
  return eq == std::string::npos ? ""
                                 : set_cookie.substr(eq + 1, end == std::string::npos ? end : end - eq - 1);
}

// The value of query parameter `name` in a URL (as sent: still escaped).
std::string QueryParam(const std::string& url, const std::string& name) {
  const size_t q = url.find('?');
  if (q == std::string::npos) return "";
  size_t pos = q + 1;
  while (pos < url.size()) {
    size_t end = url.find('&', pos);
    if (end == std::string::npos) end = url.size();
    const std::string pair = url.substr(pos, end - pos);
    if (pair.rfind(name + "=", 0) == 0) return pair.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

// "http://127.0.0.1:<port><target>" → {port, target}; {0, ""} for anything else.
std::pair<int, std::string> Split(const std::string& url) {
  const std::string prefix = "http://127.0.0.1:";
  if (url.rfind(prefix, 0) != 0) return {0, ""};
  const size_t slash = url.find('/', prefix.size());
  if (slash == std::string::npos) return {0, ""};
  return {std::stoi(url.substr(prefix.size(), slash - prefix.size())), url.substr(slash)};
}

// One Hydra for the whole suite: `hydra serve all --dev` (plain http on loopback) with its
// database in memory, JWT access tokens, and our client.
class Hydra {
 public:
  bool Start(const std::string& binary, const std::string& dir, std::string* why) {
    public_port_ = FreePort();
    admin_port_ = FreePort();
    issuer_ = "http://127.0.0.1:" + std::to_string(public_port_);
    const std::string config = dir + "/hydra.yml";
    std::ofstream(config) << "dsn: memory\n"
                          << "serve:\n"
                          << "  public: {host: 127.0.0.1, port: " << public_port_ << "}\n"
                          << "  admin: {host: 127.0.0.1, port: " << admin_port_ << "}\n"
                          << "urls:\n  self:\n    issuer: " << issuer_
                          << "\n"
                          // The login and consent app is the test itself (through the admin
                          // API, AcceptLogin and AcceptConsent): the browser's way there stops
                          // at the redirect, so nothing needs to listen at these addresses.
                          << "  login: http://127.0.0.1:9/login\n  consent: http://127.0.0.1:9/consent\n"
                          << "strategies:\n  access_token: jwt\n"
                          << "secrets:\n  system: [\"a system secret of the dispotify e2e test\"]\n"
                          << "webfinger:\n  jwks:\n    broadcast_keys: [hydra.openid.id-token, "
                             "hydra.jwt.access-token, "
                          << kTestKeySet << "]\n"
                          << "log: {level: info}\n";
    log_ = dir + "/hydra.log";
    // The fixture's destructor stops Hydra on any failure; setpriv (util-linux, essential in
    // Debian) also has the kernel kill it if this process dies without unwinding (a ctest
    // timeout, a crash), so no Hydra outlives its test holding ports.
    std::vector<std::string> argv = {binary, "serve", "all", "--dev", "-c", config};
    if (::access("/usr/bin/setpriv", X_OK) == 0) {
      argv.insert(argv.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"});
    }
    process_ = std::make_unique<Process>(argv, log_);
    const bool up = Eventually(
        [&] {
          auto r = HttpCall(admin_port_, "GET", "/health/ready");
          auto d = HttpCall(public_port_, "GET", "/.well-known/openid-configuration");
          return r && r->status == 200 && d && d->status == 200;
        },
        60s);
    if (!up) *why = "hydra did not become ready (log: " + log_ + ")";
    return up;
  }

  // A client of ours: the client credentials grant, the scopes that are our roles, and the
  // audiences it may ask for. `lifespan`: its access tokens' lifetime ("" = Hydra's default).
  std::pair<std::string, std::string> CreateClient(const std::string& lifespan = "") {
    json::value body = json::value::object();
    body["client_name"] = json::value::string("dispotify-e2e");
    body["client_secret"] = json::value::string("the client secret of the dispotify e2e test");
    body["grant_types"] = json::value::array({json::value::string("client_credentials")});
    body["scope"] = json::value::string("listener uploader");
    body["audience"] =
        json::value::array({json::value::string(kAudience), json::value::string("another-service")});
    body["token_endpoint_auth_method"] = json::value::string("client_secret_post");
    auto r = HttpCall(admin_port_, "POST", "/admin/clients", body.serialize(),
                      "Content-Type: application/json\r\n");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    if (!r || r->status != 201) return {};
    const std::string id = Json(r->body).at("client_id").as_string();
    if (!lifespan.empty()) {
      json::value l = json::value::object();
      l["client_credentials_grant_access_token_lifespan"] = json::value::string(lifespan);
      auto p = HttpCall(admin_port_, "PUT", "/admin/clients/" + id + "/lifespans", l.serialize(),
                        "Content-Type: application/json\r\n");
      EXPECT_TRUE(p && p->status == 200) << (p ? p->body : "no answer");
    }
    return {id, body.at("client_secret").as_string()};
  }

  // An access token for the client through the client credentials grant ("" on failure).
  std::string Token(const std::pair<std::string, std::string>& client, const std::string& scope,
                    const std::string& audience = kAudience) {
    const std::string form = "grant_type=client_credentials&client_id=" + FormEscape(client.first) +
                             "&client_secret=" + FormEscape(client.second) + "&scope=" + FormEscape(scope) +
                             "&audience=" + FormEscape(audience);
    auto r = HttpCall(public_port_, "POST", "/oauth2/token", form,
                      "Content-Type: application/x-www-form-urlencoded\r\n");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    if (!r || r->status != 200) return "";
    return Json(r->body).at("access_token").as_string();
  }

  // The web UI's client: a public one (no secret: PKCE is its proof), the authorization code
  // grant, back at `redirect_uri`.
  bool CreateWebClient(const std::string& redirect_uri) {
    json::value body = json::value::object();
    body["client_id"] = json::value::string(kWebClient);
    body["grant_types"] = json::value::array({json::value::string("authorization_code")});
    body["response_types"] = json::value::array({json::value::string("code")});
    body["scope"] = json::value::string("openid listener uploader");
    body["audience"] = json::value::array({json::value::string(kAudience)});
    body["redirect_uris"] = json::value::array({json::value::string(redirect_uri)});
    body["token_endpoint_auth_method"] = json::value::string("none");
    auto r = HttpCall(admin_port_, "POST", "/admin/clients", body.serialize(),
                      "Content-Type: application/json\r\n");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    return r && r->status == 201;
  }

  // The login and consent app's decisions: where Hydra sends the browser next ("" on failure).
  std::string AcceptLogin(const std::string& challenge, const std::string& subject) {
    json::value body = json::value::object();
    body["subject"] = json::value::string(subject);
    return Accept("login", challenge, body);
  }
  std::string AcceptConsent(const std::string& challenge, const std::vector<std::string>& scopes) {
    json::value body = json::value::object();
    std::vector<json::value> granted;
    for (const auto& scope : scopes) granted.push_back(json::value::string(scope));
    body["grant_scope"] = json::value::array(granted);
    body["grant_access_token_audience"] = json::value::array({json::value::string(kAudience)});
    return Accept("consent", challenge, body);
  }

  // A new key in the set Hydra signs access tokens with: Hydra signs with the newest one.
  bool RotateAccessTokenKey(const std::string& kid) {
    json::value body = json::value::object();
    body["alg"] = json::value::string("RS256");
    body["use"] = json::value::string("sig");
    body["kid"] = json::value::string(kid);
    auto r = HttpCall(admin_port_, "POST", "/admin/keys/hydra.jwt.access-token", body.serialize(),
                      "Content-Type: application/json\r\n");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    return r && r->status == 201;
  }

  // Publishes the public half of `key` in the issuer's JWKS.
  bool Publish(const TestKey& key, const std::string& kid) {
    json::value jwk = key.Jwk(kid);
    jwk["alg"] = json::value::string("RS256");
    auto r = HttpCall(admin_port_, "PUT", "/admin/keys/" + std::string(kTestKeySet) + "/" + kid,
                      jwk.serialize(), "Content-Type: application/json\r\n");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r && r->status == 200;
  }

  // How many times the JWKS was requested so far, from Hydra's request log: the nodes' fetches
  // (the test itself never asks for it).
  int JwksFetches() const {
    std::ifstream in(log_);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find("started handling request") != std::string::npos &&
          line.find("/.well-known/jwks.json") != std::string::npos)
        ++n;
    }
    return n;
  }

  const std::string& issuer() const { return issuer_; }
  const std::string& log() const { return log_; }
  int public_port() const { return public_port_; }

 private:
  std::string Accept(const std::string& flow, const std::string& challenge, const json::value& body) {
    auto r = HttpCall(admin_port_, "PUT",
                      "/admin/oauth2/auth/requests/" + flow + "/accept?" + flow + "_challenge=" + challenge,
                      body.serialize(), "Content-Type: application/json\r\n");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    if (!r || r->status != 200) return "";
    return Json(r->body).at("redirect_to").as_string();
  }

  int public_port_ = 0;
  int admin_port_ = 0;
  std::string issuer_;
  std::string log_;
  std::unique_ptr<Process> process_;
};

class OidcE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string hydra = HydraBinary();
    if (::access(hydra.c_str(), X_OK) != 0) {
      const std::string why = "no Hydra at " + hydra + " (scripts/install-test-tools.sh builds it)";
      if (Required()) FAIL() << why << "; DISPOTIFY_REQUIRE_OIDC is set: not skipping";
      std::fprintf(stderr, "\n*** SKIPPING the OIDC e2e test: %s ***\n\n", why.c_str());
      GTEST_SKIP() << why;
    }
    cluster_ = std::make_unique<Cluster>(3, "oidc");
    std::string why;
    ASSERT_TRUE(hydra_.Start(hydra, cluster_->base_dir(), &why)) << why;
    const std::string tok = cluster_->base_dir() + "/api-token";
    std::ofstream(tok) << kStaticToken << "\n";
    // A leeway of 1 s (default 60) so that a token of a 1 s lifespan expires within the test.
    cluster_->SetCommonFlags({"--auth",
                              "true",
                              "--api-token-file",
                              tok,
                              "--secure-cookies",
                              "false",
                              "--scrub-interval-s",
                              "0",
                              "--oidc-issuer",
                              hydra_.issuer(),
                              "--oidc-audience",
                              kAudience,
                              "--oidc-roles-claim",
                              "scp",
                              "--oidc-leeway-s",
                              "1",
                              "--oidc-client-id",
                              kWebClient,
                              "--oidc-redirect-uri",
                              RedirectUri(),
                              "--oidc-scopes",
                              "openid listener uploader"});
    cluster_->StartAll();
    ASSERT_NE(cluster_->WaitLeader(30s), 0u);
  }
  void TearDown() override {
    if (HasFailure() && cluster_) {
      cluster_->DumpLogs();
      std::fprintf(stderr, "hydra's log: %s\n", hydra_.log().c_str());
    }
    cluster_.reset();
  }

  int Port(uint64_t node) { return cluster_->spec(node).http_port; }
  // The browser comes back from Hydra at node 1 (wherever the login started).
  std::string RedirectUri() { return "http://127.0.0.1:" + std::to_string(Port(1)) + "/auth/oidc/callback"; }

  ClientResponse Call(uint64_t node, const std::string& method, const std::string& target,
                      const std::string& headers = "", const std::string& body = "") {
    auto r = HttpCall(Port(node), method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r.value_or(ClientResponse{});
  }

  ClientResponse Upload(uint64_t node, const std::string& file_id, const std::string& token) {
    return Call(node, "POST", "/music/upload?file_id=" + file_id + "&filename=" + file_id + ".mp3",
                Bearer(token) + "Content-Type: audio/mpeg\r\n", testing_audio::MakeMp3(file_id, 4));
  }

  // The token is refused with `code` by every node, reading and uploading alike.
  void ExpectRefused(const std::string& token, const std::string& code, const std::string& what) {
    SCOPED_TRACE(what);
    for (uint64_t node = 1; node <= 3; ++node) {
      auto me = Call(node, "GET", "/auth/me", Bearer(token));
      EXPECT_EQ(me.status, 401) << me.body;
      EXPECT_EQ(ErrorCode(me), code) << me.body;
    }
    ++uploads_;
    auto up = Upload(1 + uploads_ % 3, "refused-" + std::to_string(uploads_), token);
    EXPECT_EQ(up.status, 401) << up.body;
    EXPECT_EQ(ErrorCode(up), code) << up.body;
    EXPECT_EQ(up.Header("www-authenticate"), "Bearer error=\"invalid_token\"");
    // The body names the reason, never the token (nor its signature).
    const std::string signature = token.substr(token.rfind('.') + 1);
    if (signature.size() >= 16) {
      EXPECT_EQ(up.body.find(signature.substr(0, 16)), std::string::npos) << up.body;
    }
  }

  size_t SongCount() {
    auto songs = Call(1, "GET", "/music/songs", Bearer(kStaticToken));
    EXPECT_EQ(songs.status, 200) << songs.body;
    json::value v = Json(songs.body);
    return v.has_field("items") ? v.at("items").size() : 0;
  }

  static int64_t Now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Claims as Hydra would issue them, for tokens the test signs itself.
  json::value Claims(const std::string& issuer) {
    const int64_t now = Now();
    json::value c = json::value::object();
    c["iss"] = json::value::string(issuer);
    c["sub"] = json::value::string("forger");
    c["aud"] = json::value::array({json::value::string(kAudience)});
    c["iat"] = json::value::number(now);
    c["exp"] = json::value::number(now + 600);
    c["scp"] = json::value::array({json::value::string("admin")});
    return c;
  }

  // A browser's login through Hydra, started at `node`: the node's redirect to Hydra, Hydra's
  // to the login app (which logs `subject` in), then to the consent app (which grants `scopes`),
  // then back towards the node's callback. Returns that last URL's target and the login cookie
  // the node gave (the callback itself is the caller's to make).
  struct LoginFlow {
    std::string callback;      // "/auth/oidc/callback?code=...&scope=...&state=..."
    std::string login_cookie;  // "dispotify_oidc=<value>"
    std::string login_set_cookie;
  };
  LoginFlow BrowserLogin(uint64_t node, const std::string& subject, const std::vector<std::string>& scopes) {
    LoginFlow flow;
    auto start = BrowserGet(Port(node), "/auth/oidc/login");
    EXPECT_EQ(start.status, 302) << start.body;
    flow.login_set_cookie = SetCookie(start, "dispotify_oidc");
    flow.login_cookie = "dispotify_oidc=" + CookieValueOf(flow.login_set_cookie);
    EXPECT_EQ(start.location.rfind(hydra_.issuer() + "/oauth2/auth?", 0), 0u) << start.location;
    EXPECT_EQ(QueryParam(start.location, "code_challenge_method"), "S256");
    // Hydra's own cookies (its CSRF checks between the steps), as a browser keeps them.
    std::map<std::string, std::string> jar;
    auto hydra_get = [&](const std::string& url) {
      auto [port, target] = Split(url);
      EXPECT_EQ(port, hydra_.public_port()) << url;
      std::string cookies;
      for (const auto& [name, value] : jar) cookies += (cookies.empty() ? "" : "; ") + name + "=" + value;
      BrowserAnswer a = BrowserGet(port, target, cookies);
      for (const auto& c : a.set_cookies) jar[c.substr(0, c.find('='))] = CookieValueOf(c);
      // Hydra redirects with 303 See Other.
      EXPECT_TRUE(a.status == 302 || a.status == 303) << a.status << " from " << url << ": " << a.body;
      return a;
    };
    auto to_login = hydra_get(start.location);
    const std::string login_challenge = QueryParam(to_login.location, "login_challenge");
    EXPECT_FALSE(login_challenge.empty()) << to_login.location;
    const std::string after_login = hydra_.AcceptLogin(login_challenge, subject);
    if (after_login.empty()) return flow;
    auto to_consent = hydra_get(after_login);
    const std::string consent_challenge = QueryParam(to_consent.location, "consent_challenge");
    EXPECT_FALSE(consent_challenge.empty()) << to_consent.location;
    const std::string after_consent = hydra_.AcceptConsent(consent_challenge, scopes);
    if (after_consent.empty()) return flow;
    auto back = hydra_get(after_consent);
    auto [port, target] = Split(back.location);
    EXPECT_EQ(port, Port(1)) << back.location;
    flow.callback = target;
    return flow;
  }

  std::unique_ptr<Cluster> cluster_;
  Hydra hydra_;
  int uploads_ = 0;
};

TEST_F(OidcE2eTest, HydraTokensAreValidatedAndEveryBadOneRefused) {
  // A key of the test's own, published in Hydra's JWKS before any node fetches it: it signs the
  // tokens whose claims Hydra would never issue (another issuer, not yet valid), so that their
  // refusal is the claim's and not the key's.
  const TestKey published = TestKey::Rsa();
  ASSERT_TRUE(hydra_.Publish(published, "published-by-the-test"));
  json::value published_header = json::value::object();
  published_header["alg"] = json::value::string("RS256");
  published_header["typ"] = json::value::string("JWT");
  published_header["kid"] = json::value::string("published-by-the-test");

  const auto client = hydra_.CreateClient();
  ASSERT_FALSE(client.first.empty());

  // A valid token: every node accepts it, names the client, and grants exactly the scopes asked.
  const std::string listener = hydra_.Token(client, "listener");
  ASSERT_FALSE(listener.empty());
  const std::string uploader = hydra_.Token(client, "uploader");
  ASSERT_FALSE(uploader.empty());
  for (uint64_t node = 1; node <= 3; ++node) {
    auto me = Call(node, "GET", "/auth/me", Bearer(listener));
    ASSERT_EQ(me.status, 200) << me.body;
    json::value v = Json(me.body);
    EXPECT_EQ(v.at("name").as_string(), client.first);
    EXPECT_EQ(v.at("via").as_string(), "oidc");
    ASSERT_EQ(v.at("roles").size(), 1u) << me.body;
    EXPECT_EQ(v.at("roles").at(0).as_string(), "listener");
  }
  EXPECT_EQ(Call(2, "GET", "/music/songs", Bearer(listener)).status, 200);
  // The listener may not upload (403: authenticated, not allowed); the uploader may.
  auto denied = Upload(2, "by-listener", listener);
  EXPECT_EQ(denied.status, 403) << denied.body;
  auto up = Upload(3, "by-uploader", uploader);
  ASSERT_EQ(up.status, 201) << up.body;
  auto me = Json(Call(1, "GET", "/auth/me", Bearer(uploader)).body);
  ASSERT_EQ(me.at("roles").size(), 1u);
  EXPECT_EQ(me.at("roles").at(0).as_string(), "uploader");

  // The test's key is in the JWKS the nodes fetched: with good claims its token is accepted
  // (so each refusal below under this key is the claim's).
  {
    json::value claims = Claims(hydra_.issuer());
    claims["scp"] = json::value::array({json::value::string("listener")});
    const std::string right = auth::testing::SignedToken(published_header, claims, published);
    for (uint64_t node = 1; node <= 3; ++node) {
      EXPECT_EQ(Call(node, "GET", "/auth/me", Bearer(right)).status, 200) << "node " << node;
    }
  }

  // Hydra's token for another audience of the same client.
  const std::string other = hydra_.Token(client, "uploader", "another-service");
  ASSERT_FALSE(other.empty());
  ExpectRefused(other, "jwt_wrong_audience", "another audience");

  // An expired one: a client whose tokens live 1 s (the nodes allow 1 s of skew).
  const auto short_lived = hydra_.CreateClient("1s");
  const std::string expiring = hydra_.Token(short_lived, "uploader");
  ASSERT_FALSE(expiring.empty());
  const int64_t exp = TokenPart(expiring, 1).at("exp").as_number().to_int64();
  while (Now() < exp + 2) std::this_thread::sleep_for(200ms);
  ExpectRefused(expiring, "jwt_expired", "expired");

  // Not yet valid: nbf ten minutes ahead (Hydra always issues nbf = now).
  {
    json::value claims = Claims(hydra_.issuer());
    claims["nbf"] = json::value::number(Now() + 600);
    ExpectRefused(auth::testing::SignedToken(published_header, claims, published), "jwt_not_yet_valid",
                  "not yet valid");
  }
  // Another issuer's claims, under a key the issuer does publish: the signature holds, the
  // issuer does not.
  ExpectRefused(
      auth::testing::SignedToken(published_header, Claims("http://127.0.0.1:1/not-our-issuer"), published),
      "jwt_wrong_issuer", "another issuer");

  // The uploader token with its signature tampered with (a bit of the first byte flipped).
  {
    std::string tampered = uploader;
    const size_t sig = tampered.rfind('.') + 1;
    tampered[sig] = tampered[sig] == 'A' ? 'B' : 'A';
    ExpectRefused(tampered, "jwt_bad_signature", "tampered signature");
  }
  // Its claims under "alg: none" (no signature), and under HS256 keyed with the public key of a
  // key in the issuer's JWKS: the classic confusion, where a verifier that took the key's bytes
  // as an HMAC secret would accept a token anyone can make.
  {
    json::value header = TokenPart(uploader, 0);
    json::value payload = TokenPart(uploader, 1);
    header["alg"] = json::value::string("none");
    ExpectRefused(Part(header) + "." + Part(payload) + ".", "jwt_unsupported_alg", "alg none");
    json::value hs_header = published_header;
    hs_header["alg"] = json::value::string("HS256");
    ExpectRefused(auth::testing::Hs256Token(hs_header, payload, published.PublicPem()), "jwt_unsupported_alg",
                  "HS256 keyed with the public key");
  }
  // Signed by a key the issuer never published: with a kid of its own, and with Hydra's kid.
  const TestKey forger = TestKey::Rsa();
  {
    json::value header = published_header;
    header["kid"] = json::value::string("never-published");
    ExpectRefused(auth::testing::SignedToken(header, Claims(hydra_.issuer()), forger), "jwt_unknown_key",
                  "unpublished key");
    header["kid"] = TokenPart(uploader, 0).at("kid");
    ExpectRefused(auth::testing::SignedToken(header, TokenPart(uploader, 1), forger), "jwt_bad_signature",
                  "unpublished key under Hydra's kid");
  }
  // A flood of made-up kids costs the issuer at most one JWKS fetch per node per 30 s
  // (KeyCache's min_refetch_interval), not one per token.
  {
    const int fetches = hydra_.JwksFetches();
    ASSERT_GE(fetches, 3) << "each node fetched the JWKS at least once";
    json::value header = published_header;
    for (int i = 0; i < 20; ++i) {
      header["kid"] = json::value::string("made-up-" + std::to_string(i));
      const std::string token = auth::testing::SignedToken(header, Claims(hydra_.issuer()), forger);
      auto r = Call(1 + i % 3, "GET", "/auth/me", Bearer(token));
      EXPECT_EQ(r.status, 401) << r.body;
      EXPECT_EQ(ErrorCode(r), "jwt_unknown_key") << r.body;
    }
    EXPECT_LE(hydra_.JwksFetches() - fetches, 3) << "the refetch on an unknown kid is not rate-limited";
  }
  // Nothing above changed anything: the one upload that was allowed is the only song.
  EXPECT_EQ(SongCount(), 1u);
}

TEST_F(OidcE2eTest, KeyRotationAtHydraIsFollowedWithoutRestart) {
  const auto client = hydra_.CreateClient();
  ASSERT_FALSE(client.first.empty());
  const std::string before = hydra_.Token(client, "listener");
  ASSERT_FALSE(before.empty());
  const auto first_fetch = std::chrono::steady_clock::now();
  for (uint64_t node = 1; node <= 3; ++node) {
    ASSERT_EQ(Call(node, "GET", "/auth/me", Bearer(before)).status, 200) << "node " << node;
  }
  const std::string old_kid = TokenPart(before, 0).at("kid").as_string();
  const int fetches = hydra_.JwksFetches();
  ASSERT_GE(fetches, 3) << "each node fetched the JWKS";

  ASSERT_TRUE(hydra_.RotateAccessTokenKey("rotated-by-the-test"));
  const std::string after = hydra_.Token(client, "uploader");
  ASSERT_FALSE(after.empty());
  const std::string new_kid = TokenPart(after, 0).at("kid").as_string();
  ASSERT_EQ(new_kid, "rotated-by-the-test") << "Hydra does not sign with the newest key";

  // Each node has the old JWKS cached. The new kid makes it refetch, but at most once per 30 s
  // (min_refetch_interval) and the first fetch was moments ago: at first the token is refused
  // as signed by an unknown key (when less than 30 s have passed, which a slow start could
  // exceed: then the check is moot and skipped).
  bool within_interval = false;
  {
    auto r = Call(1, "GET", "/auth/me", Bearer(after));
    within_interval = std::chrono::steady_clock::now() - first_fetch < 25s;
    if (within_interval) {
      EXPECT_EQ(r.status, 401) << r.body;
      EXPECT_EQ(ErrorCode(r), "jwt_unknown_key") << r.body;
    }
  }
  // Then each node accepts it once the interval is over, without a restart, however many tokens
  // of the unknown kid it saw meanwhile (a poll every 100 ms).
  int polls = 0;
  for (uint64_t node = 1; node <= 3; ++node) {
    const auto pid = cluster_->process(node)->pid();
    EXPECT_TRUE(Eventually(
        [&] {
          ++polls;
          auto r = HttpCall(Port(node), "GET", "/auth/me", "", Bearer(after));
          return r && r->status == 200;
        },
        45s))
        << "node " << node << " never accepted the rotated key";
    EXPECT_EQ(cluster_->process(node)->pid(), pid);
    EXPECT_TRUE(cluster_->process(node)->running());
    auto me = Json(Call(node, "GET", "/auth/me", Bearer(after)).body);
    ASSERT_TRUE(me.has_field("roles")) << me.serialize();
    EXPECT_EQ(me.at("roles").at(0).as_string(), "uploader");
  }
  // One refetch per node, two at most if a poll straddled an interval: not one per token.
  const int refetches = hydra_.JwksFetches() - fetches;
  EXPECT_GE(refetches, 1);
  EXPECT_LE(refetches, 6) << "after " << polls << " polls";
  // Node 1 had most of the 30 s to wait, polling every 100 ms.
  if (within_interval) {
    EXPECT_GT(polls, 20) << "node 1 did not wait out the refetch interval";
  }
  // The old key is still in Hydra's JWKS, so tokens signed before the rotation stay valid.
  for (uint64_t node = 1; node <= 3; ++node) {
    EXPECT_EQ(Call(node, "GET", "/auth/me", Bearer(before)).status, 200) << "node " << node;
  }
  auto up = Upload(1, "after-rotation", after);
  EXPECT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(SongCount(), 1u);
}

TEST_F(OidcE2eTest, BrowserLoginThroughHydraWithPkce) {
  ASSERT_TRUE(hydra_.CreateWebClient(RedirectUri()));

  // Started at node 2, back at node 1: the login's state travels in the browser's cookie, not in
  // any node.
  const LoginFlow flow = BrowserLogin(2, "alice", {"openid", "listener", "uploader"});
  ASSERT_FALSE(flow.callback.empty());
  EXPECT_NE(flow.login_set_cookie.find("HttpOnly"), std::string::npos) << flow.login_set_cookie;
  EXPECT_NE(flow.login_set_cookie.find("SameSite=Lax"), std::string::npos) << flow.login_set_cookie;
  auto done = BrowserGet(Port(1), flow.callback, flow.login_cookie);
  ASSERT_EQ(done.status, 302) << done.body;
  EXPECT_EQ(done.location, "/");
  const std::string session_cookie = SetCookie(done, "dispotify_session");
  const std::string csrf_cookie = SetCookie(done, "dispotify_csrf");
  ASSERT_FALSE(session_cookie.empty());
  ASSERT_FALSE(csrf_cookie.empty());
  EXPECT_NE(session_cookie.find("HttpOnly"), std::string::npos) << session_cookie;
  EXPECT_NE(session_cookie.find("SameSite=Strict"), std::string::npos) << session_cookie;
  // The page's script reads the CSRF token: that cookie cannot be HttpOnly.
  EXPECT_EQ(csrf_cookie.find("HttpOnly"), std::string::npos) << csrf_cookie;
  EXPECT_NE(SetCookie(done, "dispotify_oidc").find("Max-Age=0"), std::string::npos)
      << "login cookie not cleared";
  const std::string session = "Cookie: dispotify_session=" + CookieValueOf(session_cookie) + "\r\n";
  const std::string csrf = "X-CSRF-Token: " + CookieValueOf(csrf_cookie) + "\r\n";

  // The session works on every node (once its record is applied there: a replication lag), as
  // the user oidc-alice with the roles granted at consent.
  for (uint64_t node = 1; node <= 3; ++node) {
    EXPECT_TRUE(Eventually([&] { return Call(node, "GET", "/auth/me", session).status == 200; }, 5s))
        << "node " << node;
    auto me = Call(node, "GET", "/auth/me", session);
    ASSERT_EQ(me.status, 200) << me.body;
    json::value v = Json(me.body);
    EXPECT_EQ(v.at("name").as_string(), "oidc-alice");
    EXPECT_EQ(v.at("via").as_string(), "session");
    ASSERT_EQ(v.at("roles").size(), 2u) << me.body;
  }
  // Changing state takes the CSRF token, as for a password login's session.
  const std::string mp3 = testing_audio::MakeMp3("by-alice", 4);
  auto no_csrf = Call(3, "POST", "/music/upload?file_id=by-alice&filename=by-alice.mp3",
                      session + "Content-Type: audio/mpeg\r\n", mp3);
  EXPECT_EQ(no_csrf.status, 403) << no_csrf.body;
  EXPECT_EQ(ErrorCode(no_csrf), "csrf") << no_csrf.body;
  auto up = Call(3, "POST", "/music/upload?file_id=by-alice&filename=by-alice.mp3",
                 session + csrf + "Content-Type: audio/mpeg\r\n", mp3);
  EXPECT_EQ(up.status, 201) << up.body;

  // The code once more: Hydra refuses a used code.
  auto replay = BrowserGet(Port(1), flow.callback, flow.login_cookie);
  EXPECT_EQ(replay.status, 401) << replay.body;
  EXPECT_NE(replay.body.find("oidc_code_refused"), std::string::npos) << replay.body;

  // Login CSRF: a callback without this browser's login cookie, or with another login's.
  const LoginFlow other = BrowserLogin(1, "alice", {"openid", "listener"});
  ASSERT_FALSE(other.callback.empty());
  for (const std::string& cookie : {std::string(), flow.login_cookie}) {
    auto mismatch = BrowserGet(Port(1), other.callback, cookie);
    EXPECT_EQ(mismatch.status, 401) << mismatch.body;
    EXPECT_NE(mismatch.body.find("oidc_state_mismatch"), std::string::npos) << mismatch.body;
    EXPECT_TRUE(SetCookie(mismatch, "dispotify_session").empty());
  }
  // PKCE: a code presented with another login's state and verifier (an intercepted code replayed
  // through the attacker's own login) is refused by Hydra: the verifier does not match.
  const LoginFlow third = BrowserLogin(1, "mallory", {"openid", "listener"});
  ASSERT_FALSE(third.callback.empty());
  auto injected = BrowserGet(Port(1),
                             "/auth/oidc/callback?code=" + QueryParam(other.callback, "code") +
                                 "&state=" + QueryParam(third.callback, "state"),
                             third.login_cookie);
  EXPECT_EQ(injected.status, 401) << injected.body;
  EXPECT_NE(injected.body.find("oidc_code_refused"), std::string::npos) << injected.body;
  // (Hydra also burns a code after such an attempt: the legitimate callback would fail too.)

  // The issuer's refusal (the user said no at consent): the browser comes back with an error.
  {
    auto start = BrowserGet(Port(1), "/auth/oidc/login");
    ASSERT_EQ(start.status, 302) << start.body;
    auto denied = BrowserGet(
        Port(1), "/auth/oidc/callback?error=access_denied&state=" + QueryParam(start.location, "state"),
        "dispotify_oidc=" + CookieValueOf(SetCookie(start, "dispotify_oidc")));
    EXPECT_EQ(denied.status, 401) << denied.body;
    EXPECT_NE(denied.body.find("oidc_denied"), std::string::npos) << denied.body;
  }

  // A local user bearing the name an OIDC subject maps to is never taken over.
  json::value bob = json::value::object();
  bob["name"] = json::value::string("oidc-bob");
  bob["password"] = json::value::string("a local password of bob's");
  bob["roles"] = json::value::array({json::value::string("listener")});
  auto local = Call(1, "POST", "/admin/users", Bearer(kStaticToken) + "Content-Type: application/json\r\n",
                    bob.serialize());
  ASSERT_EQ(local.status, 201) << local.body;
  const LoginFlow as_bob = BrowserLogin(1, "bob", {"openid", "uploader"});
  ASSERT_FALSE(as_bob.callback.empty());
  auto taken = BrowserGet(Port(1), as_bob.callback, as_bob.login_cookie);
  EXPECT_EQ(taken.status, 409) << taken.body;
  EXPECT_NE(taken.body.find("oidc_name_taken"), std::string::npos) << taken.body;

  // Logout ends the session everywhere.
  auto out = Call(2, "POST", "/auth/logout", session + csrf);
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_TRUE(Eventually([&] { return Call(3, "GET", "/auth/me", session).status == 401; }, 5s));
  EXPECT_EQ(SongCount(), 1u);
}

}  // namespace
}  // namespace dispotify::e2e
