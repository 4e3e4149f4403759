#include "operator/kube/resource.h"

#include <gtest/gtest.h>

#include "operator/kube/client.h"

namespace dispotify::op::kube {
namespace {

namespace json = web::json;

TEST(ResourcePath, CoreAndNamedGroupsNamespacesNamesAndSubresources) {
  EXPECT_EQ(ResourcePath({ConfigMaps(), "ns", "cfg", ""}), "/api/v1/namespaces/ns/configmaps/cfg");
  EXPECT_EQ(ResourcePath({ConfigMaps(), "ns", "", ""}), "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(ResourcePath({ConfigMaps(), "", "", ""}), "/api/v1/configmaps");
  EXPECT_EQ(ResourcePath({StatefulSets(), "ns", "music", "scale"}),
            "/apis/apps/v1/namespaces/ns/statefulsets/music/scale");
  const ResourceType clusters{"dispotify.io/v1alpha1", "dispotifyclusters", true};
  EXPECT_EQ(ResourcePath({clusters, "ns", "music", "status"}),
            "/apis/dispotify.io/v1alpha1/namespaces/ns/dispotifyclusters/music/status");
  EXPECT_EQ(ResourcePath({Leases(), "kube-system", "op", ""}),
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/op");
  // A cluster-scoped type ignores the namespace.
  EXPECT_EQ(ResourcePath({Namespaces(), "ignored", "music", ""}), "/api/v1/namespaces/music");
  EXPECT_EQ(ResourcePath({CustomResourceDefinitions(), "", "x.dispotify.io", ""}),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.dispotify.io");
  // A subresource without a name means the collection.
  EXPECT_EQ(ResourcePath({ConfigMaps(), "ns", "", "status"}), "/api/v1/namespaces/ns/configmaps");
  // Names are encoded (system:node:x style names hold colons).
  EXPECT_EQ(ResourcePath({ConfigMaps(), "ns", "a:b c", ""}), "/api/v1/namespaces/ns/configmaps/a%3Ab%20c");
}

TEST(ResourcePath, Describe) {
  EXPECT_EQ(Describe({ConfigMaps(), "ns", "cfg", ""}), "configmaps ns/cfg");
  EXPECT_EQ(Describe({ConfigMaps(), "ns", "cfg", "status"}), "configmaps/status ns/cfg");
  EXPECT_EQ(Describe({ConfigMaps(), "ns", "", ""}), "configmaps in ns");
  EXPECT_EQ(Describe({ConfigMaps(), "", "", ""}), "configmaps in all namespaces");
  EXPECT_EQ(Describe({Namespaces(), "", "music", ""}), "namespaces music");
}

TEST(EncodeQuery, SkipsEmptyValuesAndEncodesSelectors) {
  EXPECT_EQ(EncodeQuery({}), "");
  EXPECT_EQ(EncodeQuery({{"a", ""}}), "");
  EXPECT_EQ(
      EncodeQuery({{"watch", "true"}, {"labelSelector", "app in (a,b),tier!=x"}, {"x", ""}, {"limit", "5"}}),
      "?watch=true&labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Dx&limit=5");
  EXPECT_EQ(EncodeQuery({{"fieldSelector", "metadata.name=x"}}), "?fieldSelector=metadata.name%3Dx");
}

TEST(ApiError, MapsTheCodesCallersActOn) {
  struct Case {
    int http;
    std::string body;
    StatusCode code;
  };
  const std::vector<Case> cases = {
      {404, R"({"kind":"Status","reason":"NotFound","message":"configmaps \"x\" not found"})",
       StatusCode::kNotFound},
      {409, R"({"kind":"Status","reason":"AlreadyExists","message":"already exists"})",
       StatusCode::kAlreadyExists},
      {409, R"({"kind":"Status","reason":"Conflict","message":"the object has been modified"})",
       StatusCode::kAborted},
      {410, R"({"kind":"Status","reason":"Expired","message":"too old resource version"})",
       StatusCode::kCompacted},
      {422, R"({"kind":"Status","reason":"Invalid","message":"spec.replicas: Invalid value"})",
       StatusCode::kInvalidArgument},
      {400, "bad", StatusCode::kInvalidArgument},
      {401, R"({"kind":"Status","message":"Unauthorized"})", StatusCode::kFailedPrecondition},
      {403, R"({"kind":"Status","reason":"Forbidden","message":"no"})", StatusCode::kFailedPrecondition},
      {429, "", StatusCode::kUnavailable},
      {500, "", StatusCode::kUnavailable},
      {503, "", StatusCode::kUnavailable},
      {504, "", StatusCode::kTimeout},
      {405, "", StatusCode::kIoError},
  };
  for (const auto& c : cases) {
    const Status s = ApiError(c.http, c.body, "get configmaps ns/x");
    EXPECT_EQ(s.code(), c.code) << c.http << " " << s.ToString();
    EXPECT_EQ(HttpCode(s), c.http) << s.ToString();
  }
  const Status conflict =
      ApiError(409, R"({"reason":"Conflict","message":"the object has been modified"})", "update x");
  EXPECT_EQ(conflict.message(), "HTTP 409 Conflict (update x): the object has been modified");
  EXPECT_TRUE(IsConflict(conflict));
  EXPECT_TRUE(IsGone(ApiError(410, "", "")));
  EXPECT_TRUE(IsNotFound(ApiError(404, "", "")));
  // A body that is not a Status object is shown as text.
  EXPECT_EQ(ApiError(502, "upstream down\n", "").message(), "HTTP 502: upstream down");
  // Statuses that did not come from an answer have no HTTP code.
  EXPECT_EQ(HttpCode(Status::NotFound("HTTP? no")), std::nullopt);
  EXPECT_EQ(HttpCode(Status::Unavailable("no answer")), std::nullopt);
  EXPECT_EQ(HttpCode(Status::Ok()), std::nullopt);
}

TEST(WatchStream, ParsesEventsIncludingA410ErrorEvent) {
  auto added = ParseWatchEvent(
      R"({"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a","namespace":"n","resourceVersion":"7"}}})");
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->type, WatchEventType::kAdded);
  EXPECT_EQ(ObjectKey(added->object), "n/a");
  EXPECT_EQ(MetaString(added->object, "resourceVersion"), "7");

  auto bookmark = ParseWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}})");
  ASSERT_TRUE(bookmark.ok());
  EXPECT_EQ(bookmark->type, WatchEventType::kBookmark);
  EXPECT_EQ(MetaString(bookmark->object, "resourceVersion"), "12");

  for (const char* t : {"MODIFIED", "DELETED"}) {
    auto e = ParseWatchEvent(std::string(R"({"type":")") + t + R"(","object":{}})");
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(WatchEventTypeName(e->type), t);
  }

  // The watch cache's way of saying the resourceVersion is too old: a 200 answer whose stream holds
  // an ERROR event with a Status object.
  auto error = ParseWatchEvent(
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (234)","reason":"Expired","code":410}})j");
  ASSERT_TRUE(error.ok()) << error.status().ToString();
  EXPECT_EQ(error->type, WatchEventType::kError);
  const Status gone = ApiErrorFromStatusObject(error->object, "watch configmaps");
  EXPECT_TRUE(IsGone(gone)) << gone.ToString();
  EXPECT_EQ(HttpCode(gone), 410);
  EXPECT_NE(gone.message().find("too old resource version: 1 (234)"), std::string::npos);
  // An ERROR event with another code maps like an answer with it; one without a code is a 500.
  EXPECT_EQ(ApiErrorFromStatusObject(json::value::parse(R"({"code":403,"message":"no"})"), "").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(HttpCode(ApiErrorFromStatusObject(json::value::object(), "")), 500);

  EXPECT_EQ(ParseWatchEvent("{not json").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"SNAPSHOT","object":{}})").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"ADDED"})").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseWatchEvent(R"({"type":"ADDED","object":"x"})").status().code(), StatusCode::kCorruption);
}

TEST(WatchStream, LineSplitterCutsLinesAcrossChunks) {
  LineSplitter lines;
  EXPECT_EQ(lines.Next(), std::nullopt);
  lines.Append(R"({"type":"ADD)");
  EXPECT_EQ(lines.Next(), std::nullopt);
  lines.Append("ED\"}\n\n{\"a\":1}\r\n{\"b\"");
  EXPECT_EQ(lines.Next(), R"({"type":"ADDED"})");
  EXPECT_EQ(lines.Next(), R"({"a":1})");  // the empty line is skipped, the \r dropped
  EXPECT_EQ(lines.Next(), std::nullopt);
  EXPECT_EQ(lines.Rest(), R"({"b")");
  EXPECT_EQ(lines.pending(), 4u);
  lines.Append(":2}\n");
  EXPECT_EQ(lines.Next(), R"({"b":2})");
  EXPECT_EQ(lines.pending(), 0u);
}

TEST(ObjectHelpers, KeysAndTimes) {
  const auto obj = json::value::parse(R"({"metadata":{"name":"n","namespace":"ns","resourceVersion":"3"}})");
  EXPECT_EQ(ObjectKey(obj), "ns/n");
  EXPECT_EQ(ObjectKey(json::value::parse(R"({"metadata":{"name":"cluster-wide"}})")), "cluster-wide");
  EXPECT_EQ(MetaString(obj, "resourceVersion"), "3");
  EXPECT_EQ(MetaString(obj, "uid"), "");
  EXPECT_EQ(MetaString(json::value::string("x"), "name"), "");

  const auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1796571061123456));
  EXPECT_EQ(FormatTime(t), "2026-12-06T15:31:01.123456Z");
  EXPECT_EQ(FormatTime(t, false), "2026-12-06T15:31:01Z");
}

TEST(NewHttpsKubeApi, RefusesUnusableSettingsUpFront) {
  KubeConfig c;
  EXPECT_EQ(NewHttpsKubeApi(c).status().code(), StatusCode::kInvalidArgument);  // no server
  c.server = "https://127.0.0.1:1";
  EXPECT_TRUE(NewHttpsKubeApi(c).ok());
  c.ca_pem = "not a certificate";
  auto bad_ca = NewHttpsKubeApi(c);
  EXPECT_EQ(bad_ca.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_ca.status().message().find("no PEM certificate"), std::string::npos)
      << bad_ca.status().ToString();
  c.ca_pem.clear();
  c.client_cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  c.client_key_pem = "garbage";
  EXPECT_EQ(NewHttpsKubeApi(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(NewHttpsKubeApi, AnUnreachableServerIsUnavailableNotAnException) {
  KubeConfig c;
  c.server = "https://127.0.0.1:1";  // nothing listens on port 1
  auto api = NewHttpsKubeApi(c);
  ASSERT_TRUE(api.ok());
  auto got = (*api)->Get({ConfigMaps(), "ns", "x", ""});
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status().ToString();
  EXPECT_EQ(HttpCode(got.status()), std::nullopt);
  Status w = (*api)->Watch(
      {ConfigMaps(), "ns", "", ""}, {}, [](const WatchEvent&) {}, std::stop_token());
  EXPECT_EQ(w.code(), StatusCode::kUnavailable) << w.ToString();
}

TEST(RetryOnConflict, RetriesConflictsOnly) {
  int calls = 0;
  Status s = RetryOnConflict([&] { return ++calls < 3 ? ApiError(409, "", "update") : Status::Ok(); });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  s = RetryOnConflict(
      [&] {
        ++calls;
        return ApiError(409, "", "update");
      },
      4);
  EXPECT_TRUE(IsConflict(s));
  EXPECT_EQ(calls, 4);
  calls = 0;
  s = RetryOnConflict([&] {
    ++calls;
    return ApiError(404, "", "update");
  });
  EXPECT_TRUE(IsNotFound(s));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace dispotify::op::kube
