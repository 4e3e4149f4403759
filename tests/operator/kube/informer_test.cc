#include "operator/kube/informer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "tests/operator/kube/fake_kube_api.h"

namespace dispotify::op::kube {
namespace {

namespace json = web::json;
using namespace std::chrono_literals;

template <typename F>
bool Eventually(F cond, std::chrono::milliseconds timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return cond();
}

json::value Cm(const std::string& name, const std::string& value, const std::string& rv = "") {
  json::value cm = json::value::object();
  cm["kind"] = json::value::string("ConfigMap");
  cm["metadata"]["name"] = json::value::string(name);
  cm["metadata"]["namespace"] = json::value::string("ns");
  if (!rv.empty()) cm["metadata"]["resourceVersion"] = json::value::string(rv);
  cm["data"]["v"] = json::value::string(value);
  return cm;
}

WatchEvent Event(WatchEventType type, json::value object) {
  return WatchEvent{type, std::move(object)};
}

class InformerTest : public ::testing::Test {
 protected:
  ResourceRef Ref(const std::string& name = "") { return {ConfigMaps(), "ns", name, ""}; }

  std::unique_ptr<Informer> Make() {
    InformerOptions o;
    o.ref = Ref();
    o.backoff_initial = 20ms;
    o.backoff_max = 100ms;
    return std::make_unique<Informer>(&api_, o, [this](ChangeType t, const json::value& obj) {
      std::lock_guard lock(mu_);
      seen_.push_back(std::string(ChangeTypeName(t)) + " " + MetaString(obj, "name") + "=" +
                      obj.at("data").at("v").as_string());
    });
  }
  std::vector<std::string> Seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    seen_.clear();
  }

  fakes::FakeKubeApi api_;
  std::mutex mu_;
  std::vector<std::string> seen_;
};

TEST_F(InformerTest, ListsThenAppliesWatchEventsAndBookmarks) {
  api_.Put(Ref("a"), Cm("a", "1"));
  api_.Put(Ref("b"), Cm("b", "1"));
  auto informer = Make();
  EXPECT_FALSE(informer->HasSynced());
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync(5s));
  ASSERT_TRUE(api_.WaitWatching());
  EXPECT_EQ(Seen(), (std::vector<std::string>{"added a=1", "added b=1"}));
  const std::string list_rv = informer->resource_version();
  EXPECT_EQ(api_.watch_versions(), std::vector<std::string>{list_rv});

  api_.Emit(Event(WatchEventType::kAdded, Cm("c", "1", "201")));
  api_.Emit(Event(WatchEventType::kModified, Cm("a", "2", "202")));
  api_.Emit(Event(WatchEventType::kDeleted, Cm("b", "1", "203")));
  json::value bookmark = json::value::object();
  bookmark["metadata"]["resourceVersion"] = json::value::string("250");
  api_.Emit(Event(WatchEventType::kBookmark, bookmark));
  ASSERT_TRUE(api_.WaitWatching());
  ASSERT_TRUE(Eventually([&] { return informer->resource_version() == "250"; }));
  EXPECT_EQ(Seen(),
            (std::vector<std::string>{"added a=1", "added b=1", "added c=1", "modified a=2", "deleted b=1"}));
  EXPECT_EQ(informer->Get("ns/a")->at("data").at("v").as_string(), "2");
  EXPECT_FALSE(informer->Get("ns/b").has_value());
  EXPECT_EQ(informer->List().size(), 2u);

  // The server ends the watch (its timeout): watch again from the bookmark, no list.
  api_.End(Status::Ok());
  ASSERT_TRUE(Eventually([&] { return api_.watches == 2; }));
  EXPECT_EQ(api_.watch_versions().back(), "250");
  EXPECT_EQ(informer->lists(), 1u);
}

TEST_F(InformerTest, RelistsOnGoneAndReportsWhatChangedMeanwhile) {
  api_.Put(Ref("a"), Cm("a", "1"));
  api_.Put(Ref("b"), Cm("b", "1"));
  api_.Put(Ref("c"), Cm("c", "1"));
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync(5s));
  ASSERT_TRUE(api_.WaitWatching());
  Clear();
  // While the watch was failing: b changed, c went, d came, a stayed as it was.
  api_.Put(Ref("b"), Cm("b", "2"));
  api_.Remove(Ref("c"));
  api_.Put(Ref("d"), Cm("d", "1"));
  api_.End(ApiError(410, R"({"reason":"Expired","message":"too old resource version"})", "watch"));
  ASSERT_TRUE(Eventually([&] { return informer->lists() == 2 && api_.watches == 2; }));
  auto seen = Seen();
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"added d=1", "deleted c=1", "modified b=2"}));
  EXPECT_EQ(informer->List().size(), 3u);
  EXPECT_EQ(informer->resource_version(), std::to_string(api_.rv()));
}

TEST_F(InformerTest, BacksOffOnErrorsAndResumesFromTheLastVersion) {
  api_.SetListError(Status::Unavailable("down"));
  auto informer = Make();
  informer->Start();
  // Lists fail and are retried with a growing wait (20, 40, 80, 100, 100 ms...).
  ASSERT_TRUE(Eventually([&] { return api_.lists >= 4; }));
  EXPECT_FALSE(informer->HasSynced());
  api_.SetListError(Status::Ok());
  ASSERT_TRUE(informer->WaitForSync(5s));
  ASSERT_TRUE(api_.WaitWatching());
  api_.Emit(Event(WatchEventType::kAdded, Cm("x", "1", "300")));
  ASSERT_TRUE(api_.WaitWatching());
  // A broken connection: watch again from the last version seen, without listing.
  api_.End(Status::Unavailable("connection reset"));
  ASSERT_TRUE(Eventually([&] { return api_.watches == 2; }));
  EXPECT_EQ(api_.watch_versions().back(), "300");
  EXPECT_EQ(informer->lists(), 1u);
}

TEST_F(InformerTest, StopsPromptlyWhileWatching) {
  auto informer = Make();
  informer->Start();
  ASSERT_TRUE(informer->WaitForSync(5s));
  ASSERT_TRUE(api_.WaitWatching());
  const auto start = std::chrono::steady_clock::now();
  informer->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
}

}  // namespace
}  // namespace dispotify::op::kube
