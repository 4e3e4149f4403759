#include "operator/kube/events.h"

#include <gtest/gtest.h>

#include "tests/operator/kube/fake_kube_api.h"

namespace dispotify::op::kube {
namespace {

namespace json = web::json;

const json::value kCluster = json::value::parse(R"({
  "apiVersion":"dispotify.io/v1alpha1","kind":"DispotifyCluster",
  "metadata":{"name":"music","namespace":"ns","uid":"u-1","resourceVersion":"42","generation":3},
  "spec":{"replicas":3}})");

TEST(EventRecorder, BuildsACoreV1Event) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1796571061));
  const json::value e = EventRecorder::BuildEvent(kCluster, EventType::kWarning, "ScaleDownRefused",
                                                  "would lose quorum", "op-0", now);
  EXPECT_EQ(e.at("apiVersion").as_string(), "v1");
  EXPECT_EQ(e.at("kind").as_string(), "Event");
  EXPECT_EQ(e.at("metadata").at("namespace").as_string(), "ns");
  EXPECT_EQ(e.at("metadata").at("name").as_string().rfind("music.", 0), 0u);
  EXPECT_EQ(e.at("type").as_string(), "Warning");
  EXPECT_EQ(e.at("reason").as_string(), "ScaleDownRefused");
  EXPECT_EQ(e.at("message").as_string(), "would lose quorum");
  EXPECT_EQ(e.at("reportingComponent").as_string(), "dispotify-operator");
  EXPECT_EQ(e.at("reportingInstance").as_string(), "op-0");
  EXPECT_EQ(e.at("source").at("component").as_string(), "dispotify-operator");
  EXPECT_EQ(e.at("firstTimestamp").as_string(), "2026-12-06T15:31:01Z");
  EXPECT_EQ(e.at("lastTimestamp").as_string(), "2026-12-06T15:31:01Z");
  EXPECT_EQ(e.at("count").as_integer(), 1);
  const json::value& ref = e.at("involvedObject");
  EXPECT_EQ(ref.at("kind").as_string(), "DispotifyCluster");
  EXPECT_EQ(ref.at("apiVersion").as_string(), "dispotify.io/v1alpha1");
  EXPECT_EQ(ref.at("name").as_string(), "music");
  EXPECT_EQ(ref.at("namespace").as_string(), "ns");
  EXPECT_EQ(ref.at("uid").as_string(), "u-1");
  EXPECT_EQ(ref.at("resourceVersion").as_string(), "42");

  // A cluster-scoped object's events go to "default"; long messages are cut to 1 KiB.
  const json::value node =
      json::value::parse(R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"}})");
  const json::value long_one =
      EventRecorder::BuildEvent(node, EventType::kNormal, "R", std::string(5000, 'x'), "op-0", now);
  EXPECT_EQ(long_one.at("metadata").at("namespace").as_string(), "default");
  EXPECT_EQ(long_one.at("message").as_string().size(), 1024u);
  EXPECT_EQ(long_one.at("type").as_string(), "Normal");
}

TEST(EventRecorder, RepeatsCountOnTheFirstEventAndFailuresAreNotFatal) {
  fakes::FakeKubeApi api;
  EventRecorder recorder(&api, "op-0");
  recorder.Normal(kCluster, "ScaledUp", "3 -> 5");
  recorder.Normal(kCluster, "ScaledUp", "3 -> 5");
  recorder.Normal(kCluster, "ScaledUp", "3 -> 5");
  ASSERT_EQ(api.created().size(), 1u);
  EXPECT_EQ(api.patches, 2);
  const std::string name = MetaString(api.created()[0], "name");
  auto stored = api.Find({Events(), "ns", name, ""});
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->at("count").as_integer(), 3);

  // Another message is another event.
  recorder.Warning(kCluster, "ScaledUp", "5 -> 7 refused");
  EXPECT_EQ(api.created().size(), 2u);

  // The first event is gone (expired): the next repeat creates a new one.
  api.Remove({Events(), "ns", name, ""});
  recorder.Normal(kCluster, "ScaledUp", "3 -> 5");
  EXPECT_EQ(api.created().size(), 3u);

  // The API server refuses: logged, not fatal.
  api.SetWriteError(Status::Unavailable("down"));
  recorder.Normal(kCluster, "Other", "x");
  recorder.Normal(kCluster, "ScaledUp", "3 -> 5");
  EXPECT_EQ(api.created().size(), 3u);
}

}  // namespace
}  // namespace dispotify::op::kube
