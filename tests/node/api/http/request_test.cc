#include "node/api/http/request.h"

#include <gtest/gtest.h>

#include "node/api/http/response.h"

namespace dispotify::api::http {
namespace {

TEST(PercentDecodeTest, Decodes) {
  EXPECT_EQ(PercentDecode("a%20b", false), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("%2F%2f", false), "//");
  EXPECT_EQ(PercentDecode("%C3%A9", false), "\xC3\xA9");
  EXPECT_EQ(PercentDecode("", false), "");
  EXPECT_FALSE(PercentDecode("%", false));
  EXPECT_FALSE(PercentDecode("%4", false));
  EXPECT_FALSE(PercentDecode("abc%zz", false));
  EXPECT_FALSE(PercentDecode("%%", false));
}

TEST(ParseQueryTest, Pairs) {
  std::vector<std::pair<std::string, std::string>> q;
  ASSERT_TRUE(ParseQuery("q=hello+world&artist=AC%2FDC&&flag&empty=&q=2", &q));
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"q", "hello world"}));
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"artist", "AC/DC"}));
  EXPECT_EQ(q[2], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"empty", ""}));
  EXPECT_EQ(q[4], (std::pair<std::string, std::string>{"q", "2"}));
  std::vector<std::pair<std::string, std::string>> bad;
  EXPECT_FALSE(ParseQuery("a=%G0", &bad));
}

TEST(HeaderMapTest, CaseInsensitive) {
  HeaderMap h;
  h.Add("Content-Type", "audio/mpeg");
  h.Add("X-Multi", "1");
  h.Add("x-multi", "2");
  EXPECT_EQ(h.Get("content-type"), "audio/mpeg");
  EXPECT_EQ(h.Get("CONTENT-TYPE"), "audio/mpeg");
  EXPECT_FALSE(h.Get("Content-Length"));
  EXPECT_EQ(h.GetAll("X-MULTI").size(), 2u);
  Request r;
  r.headers = h;
  r.query_params = {{"a", "1"}, {"a", "2"}};
  r.path_params = {{"id", "x"}};
  EXPECT_EQ(r.Header("x-multi"), "1");
  EXPECT_EQ(r.Query("a"), "1");
  EXPECT_FALSE(r.Query("b"));
  EXPECT_EQ(r.PathParam("id"), "x");
  EXPECT_EQ(r.PathParam("nope"), "");
}

TEST(BodyReaderTest, StringReaderAndReadAll) {
  StringBodyReader r("hello world", 3);
  auto all = ReadBodyToString(r, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, "hello world");

  StringBodyReader big("0123456789");
  EXPECT_EQ(ReadBodyToString(big, 5).status().code(), StatusCode::kInvalidArgument);

  StringBodyReader truncated("abc", 100, Status::Aborted("truncated"));
  EXPECT_EQ(ReadBodyToString(truncated, 100).status().code(), StatusCode::kAborted);
}

TEST(JsonErrorTest, Shape) {
  Response r = JsonError(404, "not_found", "no \"song\"\n here\x01");
  EXPECT_EQ(r.status(), 404);
  EXPECT_EQ(r.content_type(), "application/json");
  EXPECT_EQ(std::get<std::string>(r.body()),
            "{\"error\": {\"code\": \"not_found\", \"message\": \"no \\\"song\\\"\\n here\\u0001\"}}");
}

TEST(JsonErrorTest, FromStatus) {
  EXPECT_EQ(ErrorResponse(Status::NotFound("x")).status(), 404);
  EXPECT_EQ(ErrorResponse(Status::InvalidArgument("x")).status(), 400);
  EXPECT_EQ(ErrorResponse(Status::Timeout("x")).status(), 408);
  EXPECT_EQ(ErrorResponse(Status::Unavailable("x")).status(), 503);
  EXPECT_EQ(ErrorResponse(Status::NoSpace("x")).status(), 507);
  EXPECT_EQ(ErrorResponse(Status::Corruption("x")).status(), 500);
  Response r = ErrorResponse(Status::AlreadyExists("dup"));
  EXPECT_EQ(r.status(), 409);
  EXPECT_EQ(std::get<std::string>(r.body()),
            "{\"error\": {\"code\": \"already_exists\", \"message\": \"dup\"}}");
}

TEST(ResponseTest, FileAtPathChecksRegion) {
  auto missing = Response::FileAtPath(200, "/nonexistent/dispotify/file", 0, std::nullopt, "audio/mpeg");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto dir = Response::FileAtPath(200, "/", 0, std::nullopt, "audio/mpeg");
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dispotify::api::http
