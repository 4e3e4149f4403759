// Security at the REST API of a real 3-node cluster with auth on (issue 13): every route without
// credentials, each role against routes above it, API tokens (expiry, revocation seen by every
// node), browser sessions with their CSRF token, ownership of songs, a login brute force that hits
// the rate limit, a disabled user, and bearer tokens that are not ours. Each refusal is checked for
// its status code and that nothing changed.

#include <cpprest/json.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "node/auth/policy.h"
#include "tests/support/audio_files.h"
#include "tests/support/exec.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;
namespace json = web::json;

constexpr char kAdminPassword[] = "correct horse battery staple";
constexpr char kStaticToken[] = "static-admin-token-for-the-operator";

json::value Json(const ClientResponse& r) {
  try {
    return json::value::parse(r.body);
  } catch (const std::exception&) {
    return json::value::null();
  }
}

std::string ErrorCode(const ClientResponse& r) {
  json::value v = Json(r);
  if (!v.has_field("error")) return "";
  return v.at("error").at("code").as_string();
}

std::string Bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

// A signed-in browser: the session cookie and the CSRF token from the login answer.
struct Session {
  std::string cookie;  // "dispotify_session=dss_..."
  std::string csrf;
  std::string Headers(bool with_csrf = true) const {
    std::string h = "Cookie: " + cookie + "\r\n";
    if (with_csrf) h += "X-CSRF-Token: " + csrf + "\r\n";
    return h;
  }
};

class SecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>(3, "sec");
    const std::string pw = cluster_->base_dir() + "/admin-password";
    const std::string tok = cluster_->base_dir() + "/api-token";
    std::ofstream(pw) << kAdminPassword << "\n";
    std::ofstream(tok) << kStaticToken << "\n";
    std::vector<std::string> flags = {
        "--auth",           "true",  "--admin-password-file", pw, "--api-token-file", tok,
        "--secure-cookies", "false", "--scrub-interval-s",    "0"};
    for (const std::string& f : ExtraFlags()) flags.push_back(f);
    cluster_->SetCommonFlags(flags);
    cluster_->StartAll();
    ASSERT_NE(cluster_->WaitLeader(30s), 0u);
    // The leader creates the first admin once it leads (polled with the static token: failed
    // logins would spend the admin's failed-login budget).
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = HttpCall(Port(1), "GET", "/admin/users", "", Bearer(kStaticToken));
          return r && r->status == 200 && r->body.find("\"admin\"") != std::string::npos;
        },
        30s));
    ASSERT_TRUE(Login(1, "admin", kAdminPassword).has_value());
  }
  virtual std::vector<std::string> ExtraFlags() const { return {}; }
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  int Port(uint64_t node) { return cluster_->spec(node).http_port; }

  ClientResponse Call(uint64_t node, const std::string& method, const std::string& target,
                      const std::string& headers = "", const std::string& body = "") {
    auto r = HttpCall(Port(node), method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r.value_or(ClientResponse{});
  }

  std::optional<Session> Login(uint64_t node, const std::string& name, const std::string& password) {
    json::value body = json::value::object();
    body["name"] = json::value::string(name);
    body["password"] = json::value::string(password);
    auto r =
        HttpCall(Port(node), "POST", "/auth/login", body.serialize(), "Content-Type: application/json\r\n");
    if (!r || r->status != 200) return std::nullopt;
    Session s;
    const std::string set = r->Header("set-cookie");
    s.cookie = set.substr(0, set.find(';'));
    s.csrf = Json(*r).at("csrf_token").as_string();
    return s;
  }

  void CreateUser(const std::string& name, const std::string& password, const std::string& role) {
    json::value body = json::value::object();
    body["name"] = json::value::string(name);
    body["password"] = json::value::string(password);
    body["roles"] = json::value::array({json::value::string(role)});
    auto r = Call(1, "POST", "/admin/users", Bearer(kStaticToken), body.serialize());
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // A new API token of the session's user; returns {secret, id}.
  std::pair<std::string, std::string> NewToken(uint64_t node, const Session& s, const std::string& name,
                                               int expires_in_s = 0) {
    json::value body = json::value::object();
    body["name"] = json::value::string(name);
    if (expires_in_s > 0) body["expires_in_s"] = json::value::number(expires_in_s);
    auto r = Call(node, "POST", "/auth/tokens", s.Headers(), body.serialize());
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return {};
    json::value v = Json(r);
    return {v.at("token").as_string(), v.at("id").as_string()};
  }

  ClientResponse Upload(uint64_t node, const std::string& file_id, const std::string& headers,
                        const std::string& extra_query = "") {
    return Call(node, "POST",
                "/music/upload?file_id=" + file_id + "&filename=" + file_id + ".mp3" + extra_query,
                headers + "Content-Type: audio/mpeg\r\n", testing_audio::MakeMp3(file_id, 4));
  }

  std::unique_ptr<Cluster> cluster_;
};

// A concrete path for a route pattern.
std::string PathOf(std::string_view pattern) {
  std::string out;
  size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '{') {
      const size_t end = pattern.find('}', i);
      out += pattern.substr(i + 1, 2) == "id" ? "1" : "x";
      i = end + 1;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

TEST_F(SecurityE2eTest, EveryRouteRefusesAnonymousCallersButProbesAndLogin) {
  int checked = 0;
  for (const auth::RouteRule& rule : auth::RouteRules()) {
    if (rule.pattern.empty() || rule.pattern == "/metrics") continue;  // the UI's files; another port
    const auto r = Call(2, std::string(rule.method), PathOf(rule.pattern));
    if (rule.permission == auth::Permission::kPublic) {
      EXPECT_NE(r.status, 401) << rule.method << " " << rule.pattern;
    } else {
      EXPECT_EQ(r.status, 401) << rule.method << " " << rule.pattern << ": " << r.body;
      EXPECT_EQ(r.Header("www-authenticate").rfind("Bearer", 0), 0u) << rule.pattern;
    }
    ++checked;
  }
  EXPECT_GE(checked, 25);
  // Credentials that are not ours are refused even where no credentials are needed.
  EXPECT_EQ(Call(1, "GET", "/healthz").status, 200);
  EXPECT_EQ(Call(1, "GET", "/music/songs", Bearer("dsp_forged")).status, 401);
  EXPECT_EQ(ErrorCode(Call(1, "GET", "/music/songs", Bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."))),
            "invalid_token");
  EXPECT_EQ(Call(1, "GET", "/music/songs", "Authorization: Basic YWRtaW46eA==\r\n").status, 401);
  EXPECT_EQ(Call(1, "GET", "/music/songs", "Cookie: dispotify_session=dss_forged\r\n").status, 401);
  // Nothing was uploaded by any of it.
  auto songs = Call(1, "GET", "/music/songs", Bearer(kStaticToken));
  ASSERT_EQ(songs.status, 200);
  EXPECT_EQ(Json(songs).at("items").size(), 0u);
}

// /metrics is on its own port, checked by the same guard: credentials needed, the admin and
// metrics roles only; a scraper's token opens nothing else.
TEST_F(SecurityE2eTest, MetricsNeedTheMetricsOrAdminRole) {
  CreateUser("lisa", "listener-password", "listener");
  CreateUser("prom", "scraper-password", "metrics");
  auto lisa = Login(2, "lisa", "listener-password");
  auto prom = Login(3, "prom", "scraper-password");
  ASSERT_TRUE(lisa && prom);
  auto [lisa_token, lisa_id] = NewToken(2, *lisa, "lisa's laptop");
  auto [prom_token, prom_id] = NewToken(3, *prom, "scrape");
  ASSERT_FALSE(lisa_token.empty() || prom_token.empty());
  for (uint64_t node : {1, 2, 3}) {
    const int port = cluster_->spec(node).metrics_port;
    auto scrape = [&](const std::string& headers) {
      auto r = HttpCall(port, "GET", "/metrics", "", headers);
      EXPECT_TRUE(r.has_value());
      return r.value_or(ClientResponse{});
    };
    const auto anonymous = scrape("");
    EXPECT_EQ(anonymous.status, 401) << "node " << node;
    EXPECT_EQ(anonymous.body.find("dispotify_"), std::string::npos) << "node " << node;
    EXPECT_EQ(anonymous.Header("www-authenticate").rfind("Bearer", 0), 0u);
    EXPECT_EQ(scrape(Bearer("dsp_forged")).status, 401) << "node " << node;
    EXPECT_EQ(scrape(Bearer(lisa_token)).status, 403) << "node " << node;
    // The token was made on node 3: the others answer once they applied it.
    ASSERT_TRUE(Eventually([&] { return scrape(Bearer(prom_token)).status == 200; }, 10s)) << "node " << node;
    EXPECT_NE(scrape(Bearer(prom_token)).body.find("dispotify_build_info{"), std::string::npos);
    EXPECT_EQ(scrape(Bearer(kStaticToken)).status, 200) << "node " << node;
  }
  // The scraper's token reads nothing of the catalog and changes nothing.
  EXPECT_EQ(Call(1, "GET", "/music/songs", Bearer(prom_token)).status, 403);
  EXPECT_EQ(Call(1, "GET", "/music/search?q=a", Bearer(prom_token)).status, 403);
  EXPECT_EQ(Upload(2, "scraped", Bearer(prom_token)).status, 403);
  EXPECT_EQ(Call(3, "GET", "/admin/users", Bearer(prom_token)).status, 403);
  EXPECT_EQ(Call(1, "GET", "/auth/me", Bearer(prom_token)).status, 200);
}

TEST_F(SecurityE2eTest, RolesOwnershipTokensAndSessions) {
  CreateUser("lisa", "listener-password", "listener");
  CreateUser("ulrich", "uploader-password", "uploader");
  CreateUser("una", "uploader-password-2", "uploader");
  auto lisa = Login(2, "lisa", "listener-password");
  auto ulrich = Login(3, "ulrich", "uploader-password");
  auto una = Login(1, "una", "uploader-password-2");
  ASSERT_TRUE(lisa && ulrich && una);
  auto [lisa_token, lisa_id] = NewToken(2, *lisa, "lisa's laptop");
  auto [ulrich_token, ulrich_id] = NewToken(3, *ulrich, "ulrich's cli");
  auto [una_token, una_id] = NewToken(1, *una, "una's cli");
  ASSERT_FALSE(lisa_token.empty() || ulrich_token.empty() || una_token.empty());

  // Who am I, through each credential.
  auto me = Call(1, "GET", "/auth/me", Bearer(lisa_token));
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(Json(me).at("name").as_string(), "lisa");
  EXPECT_EQ(Json(me).at("via").as_string(), "token");
  EXPECT_EQ(Json(Call(3, "GET", "/auth/me", ulrich->Headers(false))).at("via").as_string(), "session");

  // A listener reads but cannot upload, administer or mint itself a stronger token.
  EXPECT_EQ(Call(3, "GET", "/music/songs", Bearer(lisa_token)).status, 200);
  EXPECT_EQ(Upload(1, "lisa-song", Bearer(lisa_token)).status, 403);
  EXPECT_EQ(Call(1, "PUT", "/admin/replication", Bearer(lisa_token), R"({"factor":1})").status, 403);
  EXPECT_EQ(
      Call(1, "POST", "/admin/users", Bearer(lisa_token), R"({"name":"x","password":"yyyyyyyy"})").status,
      403);
  EXPECT_EQ(Call(1, "GET", "/admin/users", Bearer(lisa_token)).status, 403);
  auto stronger = Call(2, "POST", "/auth/tokens", lisa->Headers(), R"({"name":"up","roles":["uploader"]})");
  EXPECT_EQ(stronger.status, 403) << stronger.body;

  // Uploaders upload; a song is deleted only by its uploader or an admin.
  auto up = Upload(1, "ulrich-song", Bearer(ulrich_token));
  ASSERT_EQ(up.status, 201) << up.body;
  EXPECT_EQ(Call(2, "DELETE", "/music/songs/ulrich-song", Bearer(lisa_token)).status, 403);
  EXPECT_EQ(Call(2, "DELETE", "/music/songs/ulrich-song", Bearer(una_token)).status, 403);
  EXPECT_EQ(Upload(3, "ulrich-song", Bearer(una_token), "&replace=true").status, 403)
      << "replacing someone else's song is deleting it";
  EXPECT_EQ(Call(3, "GET", "/music/songs/ulrich-song", Bearer(lisa_token)).status, 200) << "still there";
  EXPECT_EQ(Call(3, "DELETE", "/music/songs/ulrich-song", Bearer(ulrich_token)).status, 204);
  ASSERT_EQ(Upload(1, "una-song", Bearer(una_token)).status, 201);
  EXPECT_EQ(Call(2, "DELETE", "/music/songs/una-song", Bearer(kStaticToken)).status, 204) << "an admin may";

  // Sessions need the CSRF token for changes, not for reads.
  EXPECT_EQ(Call(3, "GET", "/music/songs", ulrich->Headers(false)).status, 200);
  auto no_csrf = Upload(3, "csrf-song", ulrich->Headers(false));
  EXPECT_EQ(no_csrf.status, 403);
  EXPECT_EQ(ErrorCode(no_csrf), "csrf");
  auto wrong_csrf =
      Upload(3, "csrf-song", "Cookie: " + ulrich->cookie + "\r\nX-CSRF-Token: " + una->csrf + "\r\n");
  EXPECT_EQ(ErrorCode(wrong_csrf), "csrf");
  EXPECT_EQ(Call(1, "GET", "/music/songs/csrf-song", Bearer(kStaticToken)).status, 404) << "nothing stored";
  EXPECT_EQ(Upload(3, "csrf-song", ulrich->Headers()).status, 201);

  // Tokens are listed without their secret, revoked, and the revocation reaches every node.
  auto listed = Call(3, "GET", "/auth/tokens", Bearer(ulrich_token));
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(Json(listed).at("items").size(), 1u);
  EXPECT_EQ(listed.body.find(ulrich_token), std::string::npos);
  EXPECT_EQ(Call(1, "DELETE", "/auth/tokens/" + ulrich_id, Bearer(una_token)).status, 404) << "not hers";
  EXPECT_EQ(Call(1, "DELETE", "/auth/tokens/" + ulrich_id, Bearer(ulrich_token)).status, 204);
  for (uint64_t node : {1, 2, 3}) {
    EXPECT_TRUE(
        Eventually([&] { return Call(node, "GET", "/music/songs", Bearer(ulrich_token)).status == 401; }, 5s))
        << "node " << node;
  }

  // A token that expires.
  auto [short_token, short_id] = NewToken(1, *una, "short", 1);
  EXPECT_EQ(Call(1, "GET", "/music/songs", Bearer(short_token)).status, 200);
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(ErrorCode(Call(2, "GET", "/music/songs", Bearer(short_token))), "token_expired");

  // Logout ends the session everywhere; a disabled user's credentials stop working.
  EXPECT_EQ(Call(2, "POST", "/auth/logout", lisa->Headers()).status, 204);
  EXPECT_TRUE(
      Eventually([&] { return Call(3, "GET", "/music/songs", lisa->Headers(false)).status == 401; }, 5s));
  EXPECT_EQ(Call(1, "PUT", "/admin/users/una", Bearer(kStaticToken), R"({"disabled":true})").status, 200);
  EXPECT_TRUE(Eventually(
      [&] { return ErrorCode(Call(2, "GET", "/music/songs", Bearer(una_token))) == "user_disabled"; }, 5s));
  EXPECT_FALSE(Login(1, "una", "uploader-password-2").has_value());
  // A deleted user's tokens go with them.
  EXPECT_EQ(Call(1, "DELETE", "/admin/users/lisa", Bearer(kStaticToken)).status, 204);
  EXPECT_TRUE(
      Eventually([&] { return Call(3, "GET", "/music/songs", Bearer(lisa_token)).status == 401; }, 5s));
  auto users = Call(1, "GET", "/admin/users", Bearer(kStaticToken));
  ASSERT_EQ(users.status, 200);
  EXPECT_EQ(users.body.find("$argon2"), std::string::npos) << "hashes never leave the node";
  EXPECT_EQ(Json(users).at("items").size(), 3u);  // admin, ulrich, una
}

TEST_F(SecurityE2eTest, LoginBruteForceHitsTheRateLimit) {
  CreateUser("victim", "the-real-password", "listener");
  int refused = 0;
  int limited = 0;
  std::string retry_after;
  for (int i = 0; i < 12 && limited == 0; ++i) {
    auto r = HttpCall(Port(2), "POST", "/auth/login",
                      R"({"name":"victim","password":"guess-)" + std::to_string(i) + R"("})");
    ASSERT_TRUE(r);
    if (r->status == 401) ++refused;
    if (r->status == 429) {
      ++limited;
      retry_after = r->Header("retry-after");
    }
  }
  EXPECT_EQ(refused, 5) << "five wrong guesses, then the user's bucket is empty";
  EXPECT_EQ(limited, 1);
  EXPECT_GE(std::atoi(retry_after.c_str()), 1);
  // Even the right password waits now on this node (that is the point: the attacker cannot tell).
  auto right =
      HttpCall(Port(2), "POST", "/auth/login", R"({"name":"victim","password":"the-real-password"})");
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 429);
}

TEST_F(SecurityE2eTest, PasswordsChangeAndOldOnesStopWorking) {
  CreateUser("pat", "first-password", "listener");
  auto pat = Login(1, "pat", "first-password");
  ASSERT_TRUE(pat);
  EXPECT_EQ(
      Call(1, "PUT", "/auth/password", pat->Headers(), R"({"current":"wrong-one!","new":"second-password"})")
          .status,
      403);
  EXPECT_EQ(Call(1, "PUT", "/auth/password", pat->Headers(),
                 R"({"current":"first-password","new":"second-password"})")
                .status,
            204);
  // Node 1 applied the change before answering; the others follow within the replication lag.
  EXPECT_FALSE(Login(1, "pat", "first-password").has_value());
  EXPECT_TRUE(Eventually([&] { return Login(3, "pat", "second-password").has_value(); }, 5s));
  EXPECT_EQ(Call(1, "PUT", "/auth/password", pat->Headers(), R"({"current":"second-password","new":"short"})")
                .status,
            400);
}

// A token or session handed out by one node works on every other node at once, not only after
// the replication lag (a miss there first catches up with the leader's commit). Each round makes
// a credential and uses it on the other nodes right away; without the catch-up some rounds lose
// the race (the follower has not applied the commit yet) and get 401.
TEST_F(SecurityE2eTest, ANewCredentialWorksOnEveryNodeAtOnce) {
  CreateUser("nina", "nina-password", "listener");
  std::vector<Session> sessions;
  for (uint64_t maker = 1; maker <= 3; ++maker) {
    auto nina = Login(maker, "nina", "nina-password");
    ASSERT_TRUE(nina) << maker;
    for (uint64_t other = 1; other <= 3; ++other) {
      EXPECT_EQ(Call(other, "GET", "/auth/me", nina->Headers(false)).status, 200)
          << "a session from node " << maker << " on node " << other;
    }
    sessions.push_back(*nina);
  }
  for (int round = 0; round < 15; ++round) {
    const uint64_t maker = 1 + round % 3;
    auto [token, id] = NewToken(maker, sessions[maker - 1], "round " + std::to_string(round));
    ASSERT_FALSE(token.empty()) << round;
    for (uint64_t other = 1; other <= 3; ++other) {
      EXPECT_EQ(Call(other, "GET", "/auth/me", Bearer(token)).status, 200)
          << "round " << round << ", node " << other;
    }
  }
  // A made-up token is still refused everywhere.
  EXPECT_EQ(Call(2, "GET", "/auth/me", Bearer("dsp_" + std::string(64, 'a'))).status, 401);
}

TEST_F(SecurityE2eTest, TheCliLogsInStoresItsTokenPrivatelyAndLogsOut) {
  CreateUser("cli-user", "cli-password", "uploader");
  const std::string token_file = cluster_->base_dir() + "/config/dispotify/token";
  std::string endpoints;
  for (uint64_t id = 1; id <= 3; ++id) {
    endpoints += (id > 1 ? "," : "") + std::string("http://127.0.0.1:") + std::to_string(Port(id));
  }
  auto ctl = [&](const std::string& args, const std::string& stdin_text = "") {
    const std::string cmd = (stdin_text.empty() ? "" : "printf '%s\\n' '" + stdin_text + "' | ") +
                            "env -u DISPOTIFY_TOKEN DISPOTIFY_TOKEN_FILE=" + token_file + " " +
                            DISPOTIFYCTL_BINARY + " --endpoints " + endpoints + " --timeout 10 " + args;
    return testing_exec::Exec({"sh", "-c", cmd}, cluster_->base_dir());
  };
  auto anonymous = ctl("ls");
  EXPECT_EQ(anonymous.code, 1);
  EXPECT_NE(anonymous.err.find("401"), std::string::npos) << anonymous.err;
  EXPECT_NE(anonymous.err.find("dispotifyctl login"), std::string::npos) << anonymous.err;

  auto wrong = ctl("login cli-user --password-stdin", "not-the-password");
  EXPECT_EQ(wrong.code, 1) << wrong.out << wrong.err;
  auto login = ctl("login cli-user --password-stdin", "cli-password");
  ASSERT_EQ(login.code, 0) << login.out << login.err;
  struct stat st {};
  ASSERT_EQ(::stat(token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string token = testing_exec::ReadWholeFile(token_file).substr(0, 47);
  EXPECT_EQ(token.rfind("dsp_", 0), 0u);
  auto ls = ctl("ls");
  EXPECT_EQ(ls.code, 0) << ls.err;
  // The login's session was ended; only the token remains, and it acts as the user.
  EXPECT_EQ(Json(Call(2, "GET", "/auth/me", Bearer(token))).at("name").as_string(), "cli-user");

  ::chmod(token_file.c_str(), 0644);
  auto shared = ctl("ls");
  EXPECT_EQ(shared.code, 1);
  EXPECT_NE(shared.err.find("chmod 600"), std::string::npos) << shared.err;
  ::chmod(token_file.c_str(), 0600);

  auto logout = ctl("logout");
  ASSERT_EQ(logout.code, 0) << logout.err;
  EXPECT_NE(::stat(token_file.c_str(), &st), 0) << "the file is gone";
  EXPECT_TRUE(Eventually([&] { return Call(3, "GET", "/music/songs", Bearer(token)).status == 401; }, 5s));
}

// The audit trail of a real cluster: what was done and what was refused, by whom, from where;
// a flood of refusals stays a few entries; `dispotifyctl audit verify` passes on an intact node
// and names the entry when one node's stored trail was edited behind its back.
TEST_F(SecurityE2eTest, TheAuditTrailRecordsActionsAndDenialsAndDetectsTampering) {
  CreateUser("ulrich", "uploader-password", "uploader");
  auto ulrich = Login(2, "ulrich", "uploader-password");
  ASSERT_TRUE(ulrich);
  ASSERT_EQ(Upload(2, "audited-song", ulrich->Headers()).status, 201);
  const std::string sha =
      Json(Call(1, "GET", "/music/songs/audited-song", Bearer(kStaticToken))).at("sha256").as_string();
  EXPECT_FALSE(Login(3, "ulrich", "a-wrong-password").has_value());
  for (int i = 0; i < 200; ++i) (void)HttpCall(Port(1), "GET", "/music/songs");  // a flood of 401s
  EXPECT_EQ(Call(1, "DELETE", "/music/songs/audited-song", Bearer(kStaticToken)).status, 204);

  // Entries reach the trail within a second or so (batched); denials once their 10 s interval ends.
  ASSERT_TRUE(Eventually(
      [&] {
        auto r = HttpCall(Port(3), "GET", "/admin/audit?action=denied", "", Bearer(kStaticToken));
        return r && r->status == 200 && Json(*r).at("items").size() > 0;
      },
      30s));
  json::value page = Json(Call(3, "GET", "/admin/audit?limit=1000", Bearer(kStaticToken)));
  int uploads = 0, denials = 0, failed_logins = 0, logins = 0;
  for (const auto& e : page.at("items").as_array()) {
    const std::string action = e.at("action").as_string();
    if (action == "upload") {
      ++uploads;
      EXPECT_EQ(e.at("actor").as_string(), "ulrich");
      EXPECT_EQ(e.at("target").as_string(), "audited-song");
      EXPECT_EQ(e.at("detail").as_string(), "sha256=" + sha);
      EXPECT_EQ(e.at("client").as_string(), "127.0.0.1");
      EXPECT_FALSE(e.at("request_id").as_string().empty());
    }
    if (action == "denied") ++denials;
    if (action == "login_failed") ++failed_logins;
    if (action == "login") ++logins;
  }
  EXPECT_EQ(uploads, 1);
  EXPECT_EQ(failed_logins, 1);
  EXPECT_GE(logins, 2);  // the fixture's admin, ulrich
  EXPECT_GE(denials, 1);
  EXPECT_LE(denials, 4) << "200 refusals are aggregated, not 200 entries";
  // Secrets never reach the trail.
  const std::string raw_page = Call(3, "GET", "/admin/audit?limit=1000", Bearer(kStaticToken)).body;
  EXPECT_EQ(raw_page.find("uploader-password"), std::string::npos);
  EXPECT_EQ(raw_page.find(ulrich->csrf), std::string::npos);

  // Filters.
  json::value only_uploads = Json(Call(1, "GET", "/admin/audit?action=upload", Bearer(kStaticToken)));
  EXPECT_EQ(only_uploads.at("items").size(), 1u);
  EXPECT_EQ(Call(1, "GET", "/admin/audit").status, 401);
  EXPECT_EQ(Call(1, "GET", "/admin/audit", ulrich->Headers(false)).status, 403) << "admins only";

  // The CLI verifies the chain on every node.
  auto verify = [&](uint64_t node) {
    const std::string cmd = std::string("env DISPOTIFY_TOKEN=") + kStaticToken + " " + DISPOTIFYCTL_BINARY +
                            " --endpoints http://127.0.0.1:" + std::to_string(Port(node)) +
                            " --timeout 10 audit verify";
    return testing_exec::Exec({"sh", "-c", cmd}, cluster_->base_dir());
  };
  for (uint64_t node : {1, 2, 3}) {
    auto v = verify(node);
    EXPECT_EQ(v.code, 0) << "node " << node << ": " << v.out << v.err;
    EXPECT_NE(v.out.find("audit chain verified"), std::string::npos) << v.out;
  }

  // Someone with access to node 3's disk rewrites an entry (a bit of seq 2's actor): node 3's
  // copy no longer verifies, and the CLI says where; the other nodes' copies still do.
  ASSERT_EQ(cluster_->Stop(3).value_or(-1), 0);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((cluster_->spec(3).data_dir + "/catalog.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key = ?1", -1, &st, nullptr),
              SQLITE_OK);
    const std::string key2 = "audit/e/00000000000000000002";
    sqlite3_bind_text(st, 1, key2.data(), static_cast<int>(key2.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string value(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                      static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    sqlite3_finalize(st);
    // The actor field starts after version, seq, time, action, outcome (19 bytes) and its length (4).
    value[23] = static_cast<char>(value[23] ^ 0x01);
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE settings SET value = ?2 WHERE key = ?1", -1, &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(st, 1, key2.data(), static_cast<int>(key2.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    // And entry 3 cut to 5 bytes: it no longer decodes at all.
    ASSERT_EQ(
        sqlite3_exec(
            db, "UPDATE settings SET value = substr(value, 1, 5) WHERE key = 'audit/e/00000000000000000003'",
            nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  cluster_->Start(3);
  ASSERT_TRUE(Eventually([&] { return HttpCall(Port(3), "GET", "/readyz").has_value(); }, 20s));
  auto tampered = verify(3);
  EXPECT_EQ(tampered.code, 1) << tampered.out << tampered.err;
  EXPECT_NE(tampered.out.find("BROKEN at entry 2"), std::string::npos) << tampered.out;
  EXPECT_NE(tampered.out.find("modified"), std::string::npos) << tampered.out;
  auto intact = verify(1);
  EXPECT_EQ(intact.code, 0) << intact.out << intact.err;

  // Paging one entry at a time through node 3's damaged trail ends: the undecodable entry is shown
  // as damaged and next_after still moves past it.
  std::string after = "0";
  int pages = 0, damaged = 0;
  while (after != "null" && pages < 1000) {
    auto r = Call(3, "GET", "/admin/audit?limit=1&after=" + after, Bearer(kStaticToken));
    ASSERT_EQ(r.status, 200) << r.body;
    const json::value one = Json(r);
    for (const auto& e : one.at("items").as_array()) damaged += e.has_field("damaged") ? 1 : 0;
    const json::value& next = one.at("next_after");
    const std::string next_after = next.is_null() ? "null" : std::to_string(next.as_number().to_uint64());
    ASSERT_NE(next_after, after) << "next_after did not move at page " << pages;
    after = next_after;
    ++pages;
  }
  EXPECT_LT(pages, 1000);
  EXPECT_EQ(damaged, 1);
}

// A cluster that keeps at most 20 audit entries: the leader drops the oldest (within a round of
// 10 s) and the chain still verifies on every node from its checkpoint.
class SecurityRetentionE2eTest : public SecurityE2eTest {
 protected:
  std::vector<std::string> ExtraFlags() const override { return {"--audit-max-entries", "20"}; }
};

TEST_F(SecurityRetentionE2eTest, OldAuditEntriesGoAndTheChainStillVerifies) {
  for (int i = 0; i < 40; ++i)
    CreateUser("user" + std::to_string(i), "password-" + std::to_string(i), "listener");
  auto entries = [&](uint64_t node) {
    std::vector<json::value> out;
    auto r = HttpCall(Port(node), "GET", "/admin/audit?limit=1000", "", Bearer(kStaticToken));
    if (!r || r->status != 200) return out;
    const json::value page = Json(*r);  // the loop below must not outlive it
    for (const auto& e : page.at("items").as_array()) out.push_back(e);
    return out;
  };
  auto has_user39 = [&](const std::vector<json::value>& items) {
    return std::any_of(items.begin(), items.end(),
                       [](const json::value& e) { return e.at("target").as_string() == "user39"; });
  };
  // Every user_created entry committed (41 or more entries were written), then trimmed to 20.
  ASSERT_TRUE(Eventually(
      [&] {
        for (uint64_t node : {1, 2, 3}) {
          const auto items = entries(node);
          if (!has_user39(items) || items.size() > 20) return false;
        }
        return true;
      },
      40s))
      << entries(1).size() << " entries on node 1";
  uint64_t lowest = UINT64_MAX;
  for (const auto& e : entries(2)) lowest = std::min<uint64_t>(lowest, e.at("seq").as_number().to_uint64());
  EXPECT_GT(lowest, 20u) << "the oldest entries are gone";
  for (uint64_t node : {1, 2, 3}) {
    const std::string cmd = std::string("env DISPOTIFY_TOKEN=") + kStaticToken + " " + DISPOTIFYCTL_BINARY +
                            " --endpoints http://127.0.0.1:" + std::to_string(Port(node)) +
                            " --timeout 10 audit verify";
    auto v = testing_exec::Exec({"sh", "-c", cmd}, cluster_->base_dir());
    EXPECT_EQ(v.code, 0) << "node " << node << ": " << v.out << v.err;
    EXPECT_NE(v.out.find("audit chain verified"), std::string::npos) << v.out;
  }
}

}  // namespace
}  // namespace dispotify::e2e
