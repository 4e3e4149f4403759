#include "node/api/static_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "node/api/http/http_server.h"
#include "tests/mocks/temp_dir.h"
#include "tests/node/api/http/test_client.h"

namespace dispotify::api {
namespace {

namespace fs = std::filesystem;
using http::Request;
using http::Response;

void Write(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

// The bytes a response would send.
std::string BodyOf(const Response& r) {
  if (const auto* s = std::get_if<std::string>(&r.body())) return *s;
  const auto& region = std::get<http::FileRegion>(r.body());
  std::string out(region.length, '\0');
  EXPECT_EQ(::pread(region.fd.get(), out.data(), out.size(), static_cast<off_t>(region.offset)),
            static_cast<ssize_t>(out.size()));
  return out;
}

std::string HeaderOf(const Response& r, std::string_view name) {
  auto h = r.Header(name);
  return h ? std::string(*h) : std::string();
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() + "/dist";
    Write(root_ + "/index.html", "<!doctype html>index");
    Write(root_ + "/index.html.gz", "GZ-index");
    Write(root_ + "/assets/app-1234abcd.js", "console.log(1)");
    Write(root_ + "/assets/app-1234abcd.js.gz", "GZ-js");
    Write(root_ + "/assets/app-1234abcd.js.br", "BR-js");
    Write(root_ + "/assets/style-99.css", "body{}");
    Write(root_ + "/robots.txt", "User-agent: *");
    Write(root_ + "/.env", "secret");
    Write(dir_.path() + "/outside.txt", "TOP SECRET");
    auto files = StaticFiles::Open(root_);
    ASSERT_TRUE(files.ok()) << files.status().ToString();
    files_ = std::move(files).value();
  }

  Response Get(const std::string& path, const std::string& accept_encoding = "") {
    Request req;
    req.method = "GET";
    req.path = path;
    req.target = path;
    if (!accept_encoding.empty()) req.headers.Add("Accept-Encoding", accept_encoding);
    return files_->Serve(req);
  }

  mocks::TempDir dir_;
  std::string root_;
  std::unique_ptr<StaticFiles> files_;
};

TEST_F(StaticFilesTest, IndexAndClientRoutesGetIndexHtmlNotCached) {
  for (std::string path : {"/", "/songs", "/albums/0123456789abcdef", "/artists/The%20Beatles", "/login"}) {
    Response r = Get(path);
    EXPECT_EQ(r.status(), 200) << path;
    EXPECT_EQ(BodyOf(r), "<!doctype html>index") << path;
    EXPECT_EQ(r.content_type(), "text/html; charset=utf-8");
    EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-cache");
    EXPECT_FALSE(HeaderOf(r, "ETag").empty());
  }
}

TEST_F(StaticFilesTest, HashedAssetsAreImmutableWithTheirType) {
  Response js = Get("/assets/app-1234abcd.js");
  EXPECT_EQ(js.status(), 200);
  EXPECT_EQ(BodyOf(js), "console.log(1)");
  EXPECT_EQ(js.content_type(), "text/javascript; charset=utf-8");
  EXPECT_EQ(HeaderOf(js, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(HeaderOf(js, "Content-Encoding"), "");
  Response css = Get("/assets/style-99.css");
  EXPECT_EQ(css.content_type(), "text/css; charset=utf-8");
  Response txt = Get("/robots.txt");
  EXPECT_EQ(txt.content_type(), "text/plain; charset=utf-8");
  EXPECT_EQ(HeaderOf(txt, "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, PrecompressedSiblingsFollowAcceptEncoding) {
  Response br = Get("/assets/app-1234abcd.js", "gzip, deflate, br");
  EXPECT_EQ(BodyOf(br), "BR-js");
  EXPECT_EQ(HeaderOf(br, "Content-Encoding"), "br");
  EXPECT_EQ(br.content_type(), "text/javascript; charset=utf-8");
  EXPECT_EQ(HeaderOf(br, "Vary"), "Accept-Encoding");
  Response gz = Get("/assets/app-1234abcd.js", "gzip");
  EXPECT_EQ(BodyOf(gz), "GZ-js");
  EXPECT_EQ(HeaderOf(gz, "Content-Encoding"), "gzip");
  Response refused = Get("/assets/app-1234abcd.js", "br;q=0, gzip;q=0");
  EXPECT_EQ(BodyOf(refused), "console.log(1)");
  EXPECT_EQ(HeaderOf(refused, "Vary"), "Accept-Encoding");
  Response star = Get("/assets/app-1234abcd.js", "*");
  EXPECT_EQ(HeaderOf(star, "Content-Encoding"), "br");
  // No .br beside index.html: gzip; a client route gets the compressed index too.
  Response index = Get("/albums", "br, gzip");
  EXPECT_EQ(BodyOf(index), "GZ-index");
  EXPECT_EQ(HeaderOf(index, "Content-Encoding"), "gzip");
  EXPECT_EQ(index.content_type(), "text/html; charset=utf-8");
  // The encodings have different validators.
  EXPECT_NE(HeaderOf(br, "ETag"), HeaderOf(gz, "ETag"));
}

TEST_F(StaticFilesTest, RevalidationGets304) {
  Response first = Get("/");
  Request req;
  req.method = "GET";
  req.path = "/";
  req.headers.Add("If-None-Match", HeaderOf(first, "ETag"));
  Response again = files_->Serve(req);
  EXPECT_EQ(again.status(), 304);
  EXPECT_EQ(HeaderOf(again, "ETag"), HeaderOf(first, "ETag"));
  EXPECT_EQ(HeaderOf(again, "Cache-Control"), "no-cache");
}

TEST_F(StaticFilesTest, SecurityHeadersOnEveryFile) {
  for (std::string path : {"/", "/assets/app-1234abcd.js", "/robots.txt"}) {
    Response r = Get(path);
    EXPECT_EQ(HeaderOf(r, "Content-Security-Policy"), kContentSecurityPolicy) << path;
    EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff") << path;
  }
  const std::string csp(kContentSecurityPolicy);
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("media-src 'self' blob:"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos);
}

TEST_F(StaticFilesTest, ApiPathsStayJson404) {
  for (std::string path :
       {"/music/nothing", "/music/", "/admin/x", "/cluster/nope", "/healthz/x", "/metrics"}) {
    Response r = Get(path);
    EXPECT_EQ(r.status(), 404) << path;
    EXPECT_EQ(r.content_type(), "application/json") << path;
    EXPECT_NE(BodyOf(r).find("\"not_found\""), std::string::npos) << path;
  }
  EXPECT_FALSE(IsApiPath("/musical"));
  // The UI's own pages.
  EXPECT_FALSE(IsApiPath("/cluster"));
  EXPECT_EQ(BodyOf(Get("/cluster")), "<!doctype html>index");
  EXPECT_FALSE(IsApiPath("/clusters"));
  EXPECT_TRUE(IsApiPath("/cluster/status"));
}

TEST_F(StaticFilesTest, MissingFilesAre404NotIndex) {
  EXPECT_EQ(Get("/assets/app-old.js").status(), 404);
  EXPECT_EQ(Get("/assets/").status(), 404);
  EXPECT_EQ(Get("/favicon.ico").status(), 404);
  EXPECT_EQ(Get("/assets/app-old.js").content_type(), "application/json");
}

TEST_F(StaticFilesTest, NeverServesOutsideTheRoot) {
  for (std::string path : {"/../outside.txt", "/assets/../../outside.txt", "/%2e%2e/outside.txt",
                           "/%2E%2E%2Foutside.txt", "/assets/%2e%2e/%2e%2e/outside.txt", "/..%5coutside.txt",
                           "/.env", "/assets/.%2e/index.html", "/%00/index.html", "/..", "/./index.html"}) {
    Response r = Get(path);
    EXPECT_EQ(r.status(), 404) << path;
    EXPECT_EQ(BodyOf(r).find("TOP SECRET"), std::string::npos) << path;
    EXPECT_EQ(BodyOf(r).find("secret"), std::string::npos) << path;
  }
  EXPECT_EQ(Get("/%zz").status(), 400);
}

TEST_F(StaticFilesTest, SymlinksLeavingTheRootAreRefused) {
  ASSERT_EQ(::symlink((dir_.path() + "/outside.txt").c_str(), (root_ + "/leak.txt").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.path().c_str(), (root_ + "/up").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/assets/passwd.js").c_str()), 0);
  ASSERT_EQ(::symlink((root_ + "/robots.txt").c_str(), (root_ + "/inside.txt").c_str()), 0);
  EXPECT_EQ(Get("/leak.txt").status(), 404);
  EXPECT_EQ(Get("/up/outside.txt").status(), 404);
  EXPECT_EQ(Get("/assets/passwd.js").status(), 404);
  EXPECT_EQ(BodyOf(Get("/up")).find("TOP SECRET"), std::string::npos);
  // A link that stays inside is an ordinary file.
  EXPECT_EQ(BodyOf(Get("/inside.txt")), "User-agent: *");
  // A .gz sibling that is a link out of the root is not used either.
  ASSERT_EQ(::symlink((dir_.path() + "/outside.txt").c_str(), (root_ + "/robots.txt.gz").c_str()), 0);
  Response r = Get("/robots.txt", "gzip");
  EXPECT_EQ(BodyOf(r), "User-agent: *");
  EXPECT_EQ(HeaderOf(r, "Content-Encoding"), "");
}

TEST_F(StaticFilesTest, ARootSymlinkItselfIsFine) {
  const std::string link = dir_.path() + "/current";
  ASSERT_EQ(::symlink(root_.c_str(), link.c_str()), 0);
  auto files = StaticFiles::Open(link);
  ASSERT_TRUE(files.ok());
  Request req;
  req.path = "/assets/app-1234abcd.js";
  EXPECT_EQ(BodyOf((*files)->Serve(req)), "console.log(1)");
}

TEST(StaticFilesOpenTest, RootNeedsIndexHtml) {
  mocks::TempDir dir;
  EXPECT_FALSE(StaticFiles::Open(dir.path()).ok());
  EXPECT_FALSE(StaticFiles::Open(dir.path() + "/missing").ok());
  http::Router router;
  EXPECT_FALSE(AddWebUi(dir.path(), &router).ok());
  EXPECT_TRUE(AddWebUi("", &router).ok());
  EXPECT_EQ(router.Find("GET", "/").kind, http::Router::MatchKind::kNotFound);
}

TEST(FindWebRootTest, InstalledOrSourceTree) {
  mocks::TempDir dir;
  const std::string exe = dir.path() + "/build/release/node/server/dispotify-node";
  Write(exe, "");
  EXPECT_EQ(FindWebRoot(exe), "");
  Write(dir.path() + "/web/dist/index.html", "x");
  EXPECT_EQ(FindWebRoot(exe), dir.path() + "/web/dist");
  const std::string installed = dir.path() + "/usr/bin/dispotify-node";
  Write(installed, "");
  Write(dir.path() + "/usr/share/dispotify/web/index.html", "x");
  EXPECT_EQ(FindWebRoot(installed), dir.path() + "/usr/share/dispotify/web");
}

// Through the real server and its fallback route, with raw request targets.
TEST_F(StaticFilesTest, ThroughTheServer) {
  http::Router router;
  router.Get("/music/songs",
             [](Request&, http::BodyReader&) { return Response::Json(200, "{\"items\":[]}"); });
  ASSERT_TRUE(AddWebUi(root_, &router).ok());
  http::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  http::HttpServer server(options, std::move(router));
  ASSERT_TRUE(server.Start().ok());
  auto get = [&](const std::string& target, const std::string& method = "GET",
                 const std::string& extra = "") {
    http::testing::TestClient c(server.port());
    EXPECT_TRUE(c.Send(method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n"));
    return c.ReadResponse(method == "HEAD");
  };
  auto api = get("/music/songs");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->body, "{\"items\":[]}");
  EXPECT_EQ(api->Header("content-security-policy"), "");
  auto index = get("/albums/abc");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<!doctype html>index");
  EXPECT_EQ(index->Header("cache-control"), "no-cache");
  auto br = get("/assets/app-1234abcd.js", "GET", "Accept-Encoding: br\r\n");
  ASSERT_TRUE(br);
  EXPECT_EQ(br->body, "BR-js");
  EXPECT_EQ(br->Header("content-encoding"), "br");
  EXPECT_EQ(br->Header("vary"), "Accept-Encoding");
  auto head = get("/", "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "20");
  for (std::string target : {"/../outside.txt", "/assets/../../outside.txt", "/%2e%2e/outside.txt"}) {
    auto r = get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->body.find("TOP SECRET"), std::string::npos) << target;
  }
  auto unknown = get("/music/nothing");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(unknown->Header("content-type"), "application/json");
  auto post = get("/albums", "POST", "Content-Length: 0\r\n");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  server.Stop(std::chrono::milliseconds(2000));
}

}  // namespace
}  // namespace dispotify::api
