#include "node/api/http/router.h"

#include <gtest/gtest.h>

namespace dispotify::api::http {
namespace {

Handler Named(std::string name) {
  return [name](Request&, BodyReader&) { return Response::Text(200, name); };
}

std::string Invoke(const Router::Match& m) {
  Request req;
  StringBodyReader body("");
  Response r = m.route->handler(req, body);
  return std::get<std::string>(r.body());
}

TEST(RouterTest, LiteralAndParams) {
  Router router;
  router.Get("/music/stream/{file_id}", Named("stream"));
  router.Get("/music/search", Named("search"));
  router.Get("/music/songs/{id}", Named("song"));
  router.Get("/music/songs/search", Named("songs-search"));
  router.Delete("/music/songs/{id}", Named("delete"));
  router.Get("/", Named("root"));

  auto m = router.Find("GET", "/music/stream/abc%20def");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "stream");
  EXPECT_EQ(m.path_params.at("file_id"), "abc def");

  m = router.Find("GET", "/music/stream/a%2Fb");  // an encoded slash stays inside the parameter
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(m.path_params.at("file_id"), "a/b");

  m = router.Find("GET", "/music/songs/search");  // literal beats parameter
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "songs-search");

  m = router.Find("DELETE", "/music/songs/search");  // only the parameter route has DELETE
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "delete");
  EXPECT_EQ(m.path_params.at("id"), "search");

  m = router.Find("GET", "/");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "root");
}

TEST(RouterTest, NotFound) {
  Router router;
  router.Get("/music/stream/{file_id}", Named("stream"));
  EXPECT_EQ(router.Find("GET", "/music/stream").kind, Router::MatchKind::kNotFound);
  EXPECT_EQ(router.Find("GET", "/music/stream/").kind, Router::MatchKind::kNotFound);  // empty parameter
  EXPECT_EQ(router.Find("GET", "/music/stream/a/b").kind, Router::MatchKind::kNotFound);
  EXPECT_EQ(router.Find("GET", "/music/stream/a/").kind, Router::MatchKind::kNotFound);
  EXPECT_EQ(router.Find("GET", "music/stream/a").kind, Router::MatchKind::kNotFound);
  EXPECT_EQ(router.Find("GET", "").kind, Router::MatchKind::kNotFound);
}

TEST(RouterTest, MethodNotAllowedListsAllow) {
  Router router;
  router.Get("/music/songs/{id}", Named("get"));
  router.Delete("/music/songs/{id}", Named("delete"));
  router.Post("/music/upload", Named("upload"));
  auto m = router.Find("PUT", "/music/songs/1");
  ASSERT_EQ(m.kind, Router::MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "DELETE, GET, HEAD");
  m = router.Find("GET", "/music/upload");
  ASSERT_EQ(m.kind, Router::MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
}

TEST(RouterTest, HeadFallsBackToGet) {
  Router router;
  router.Get("/a", Named("get"));
  router.Get("/b", Named("get-b"));
  router.Add("HEAD", "/b", Named("head-b"));
  auto m = router.Find("HEAD", "/a");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "get");
  m = router.Find("HEAD", "/b");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "head-b");
}

TEST(RouterTest, BadEscapeInParam) {
  Router router;
  router.Get("/x/{id}", Named("x"));
  auto m = router.Find("GET", "/x/%zz");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_TRUE(m.bad_escape);
}

TEST(RouterTest, FallbackTakesUnmatchedGetAndHeadOnly) {
  Router router;
  router.Get("/music/songs", Named("songs"));
  router.Post("/music/upload", Named("upload"));
  router.Fallback(Named("ui"));

  auto m = router.Find("GET", "/albums/x");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "ui");
  EXPECT_EQ(m.pattern, "/*");
  m = router.Find("HEAD", "/");
  ASSERT_EQ(m.kind, Router::MatchKind::kFound);
  EXPECT_EQ(Invoke(m), "ui");
  // A route still wins, and a path some route serves with another method stays 405.
  EXPECT_EQ(Invoke(router.Find("GET", "/music/songs")), "songs");
  m = router.Find("GET", "/music/upload");
  EXPECT_EQ(m.kind, Router::MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
  // Other methods on unmatched paths stay 404.
  EXPECT_EQ(router.Find("POST", "/albums/x").kind, Router::MatchKind::kNotFound);
  EXPECT_EQ(router.Find("DELETE", "/").kind, Router::MatchKind::kNotFound);
}

TEST(RouterDeathTest, MalformedPatterns) {
  EXPECT_DEATH(Router().Get("nope", Named("x")), "start with");
  EXPECT_DEATH(Router().Get("/a/{}", Named("x")), "malformed");
  EXPECT_DEATH(Router().Get("/a/{b", Named("x")), "malformed");
  EXPECT_DEATH(Router().Get("/a", Named("x")).Get("/a", Named("y")), "duplicate");
}

}  // namespace
}  // namespace dispotify::api::http
