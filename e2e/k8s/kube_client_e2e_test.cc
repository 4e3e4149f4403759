// The operator's Kubernetes client (operator/kube) against a real kube-apiserver: CRUD, conflicts,
// paging, server-side apply, the status subresource of a custom resource, watches (and a real 410),
// an informer that relists, Lease leader election between two electors, Events, TLS verification
// and token files.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "e2e/k8s/control_plane.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/events.h"
#include "operator/kube/informer.h"
#include "operator/kube/leader_election.h"

namespace dispotify::op::kube {
namespace {

namespace json = web::json;
using dispotify::e2e_k8s::ControlPlaneTest;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

json::value J(const std::string& text) {
  return json::value::parse(text);
}

json::value ConfigMap(const std::string& ns, const std::string& name,
                      const std::map<std::string, std::string>& data,
                      const std::map<std::string, std::string>& labels = {}) {
  json::value cm = json::value::object();
  cm["apiVersion"] = json::value::string("v1");
  cm["kind"] = json::value::string("ConfigMap");
  cm["metadata"]["name"] = json::value::string(name);
  cm["metadata"]["namespace"] = json::value::string(ns);
  for (const auto& [k, v] : labels) cm["metadata"]["labels"][k] = json::value::string(v);
  json::value d = json::value::object();
  for (const auto& [k, v] : data) d[k] = json::value::string(v);
  cm["data"] = d;
  return cm;
}

std::string Data(const json::value& cm, const std::string& key) {
  if (!cm.has_field("data") || !cm.at("data").has_field(key)) return "<none>";
  return cm.at("data").at(key).as_string();
}

// Polls `cond` every 20 ms until true or `timeout`.
template <typename F>
bool Eventually(F cond, std::chrono::milliseconds timeout = 10s) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

class KubeClientE2E : public ControlPlaneTest {
 protected:
  void SetUp() override {
    ControlPlaneTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto config = LoadKubeconfig(plane().kubeconfig());
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    config_ = *config;
    auto api = NewHttpsKubeApi(config_);
    ASSERT_TRUE(api.ok()) << api.status().ToString();
    api_ = std::move(*api);
    static int counter = 0;
    ns_ = "e2e-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    json::value namespace_object = json::value::object();
    namespace_object["apiVersion"] = json::value::string("v1");
    namespace_object["kind"] = json::value::string("Namespace");
    namespace_object["metadata"]["name"] = json::value::string(ns_);
    auto created = api_->Create({Namespaces(), "", "", ""}, namespace_object);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }

  ResourceRef Cm(const std::string& name = "") const { return {ConfigMaps(), ns_, name, ""}; }
  ResourceRef Widget(const std::string& name = "", const std::string& sub = "") const {
    return {kWidgets, ns_, name, sub};
  }

  // A small custom resource type, Widget (e2e.dispotify.io/v1, with a status subresource), created
  // once and served.
  void EnsureWidgets() {
    const json::value crd = J(R"({
      "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "widgets.e2e.dispotify.io"},
      "spec": {
        "group": "e2e.dispotify.io", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{
          "name": "v1", "served": true, "storage": true,
          "subresources": {"status": {}},
          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
              "size": {"type": "integer", "minimum": 1}, "note": {"type": "string"}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}
        }]
      }})");
    const ResourceRef crd_ref{CustomResourceDefinitions(), "", "widgets.e2e.dispotify.io", ""};
    auto made = api_->Apply(crd_ref, crd);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    ASSERT_TRUE(Eventually([&] {
      auto got = api_->Get(crd_ref);
      if (!got.ok() || !got->has_field("status") || !got->at("status").has_field("conditions") ||
          !got->at("status").at("conditions").is_array()) {
        return false;  // conditions are null at first
      }
      for (const auto& c : got->at("status").at("conditions").as_array()) {
        if (c.at("type").as_string() == "Established" && c.at("status").as_string() == "True") return true;
      }
      return false;
    })) << "the CRD never became Established";
    // Discovery of a new type may lag its Established condition by a moment.
    Result<ObjectList> list = Status::Unavailable("not tried");
    ASSERT_TRUE(Eventually([&] {
      list = api_->List(Widget(), {});
      return list.ok();
    })) << list.status().ToString();
  }

  json::value WidgetObject(const std::string& name, int size, const std::string& note = "") const {
    json::value w = J(R"({"apiVersion":"e2e.dispotify.io/v1","kind":"Widget"})");
    w["metadata"]["name"] = json::value::string(name);
    w["metadata"]["namespace"] = json::value::string(ns_);
    w["spec"]["size"] = json::value::number(size);
    if (!note.empty()) w["spec"]["note"] = json::value::string(note);
    return w;
  }

  const ResourceType kWidgets{"e2e.dispotify.io/v1", "widgets", true};

  // A kubeconfig like ours with `user` and `cluster` YAML replaced.
  std::string WriteKubeconfig(const std::string& file, const std::string& cluster_extra,
                              const std::string& user) {
    std::string server = config_.server;
    const std::string path = plane().dir() + "/" + file;
    std::ofstream out(path);
    out << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " << server << "\n"
        << cluster_extra << "users:\n- name: u\n  user:\n"
        << user << "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n";
    return path;
  }

  KubeConfig config_;
  std::unique_ptr<KubeApi> api_;
  std::string ns_;
};

TEST_F(KubeClientE2E, ConfigMapCreateGetUpdateConflictDelete) {
  auto created = api_->Create(Cm(), ConfigMap(ns_, "one", {{"k", "v1"}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string rv1 = MetaString(*created, "resourceVersion");
  const std::string uid = MetaString(*created, "uid");
  EXPECT_FALSE(rv1.empty());

  auto again = api_->Create(Cm(), ConfigMap(ns_, "one", {{"k", "v1"}}));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();
  EXPECT_EQ(HttpCode(again.status()), 409);

  auto got = api_->Get(Cm("one"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(Data(*got, "k"), "v1");

  // An update from the version we read wins; a second one from that same version conflicts.
  json::value v2 = *got;
  v2["data"]["k"] = json::value::string("v2");
  auto updated = api_->Update(Cm("one"), v2);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_NE(MetaString(*updated, "resourceVersion"), rv1);
  json::value stale = *got;
  stale["data"]["k"] = json::value::string("v3");
  auto conflict = api_->Update(Cm("one"), stale);
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status().ToString();
  EXPECT_EQ(HttpCode(conflict.status()), 409);
  EXPECT_NE(conflict.status().message().find("the object has been modified"), std::string::npos)
      << conflict.status().message();

  // A delete with another incarnation's uid is refused; with ours it goes.
  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "00000000-0000-0000-0000-000000000000";
  Status s = api_->Delete(Cm("one"), wrong_uid);
  EXPECT_TRUE(IsConflict(s)) << s.ToString();
  DeleteOptions right_uid;
  right_uid.precondition_uid = uid;
  right_uid.propagation_policy = "Background";
  s = api_->Delete(Cm("one"), right_uid);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto gone = api_->Get(Cm("one"));
  EXPECT_TRUE(IsNotFound(gone.status())) << gone.status().ToString();
  EXPECT_EQ(HttpCode(gone.status()), 404);
  s = api_->Delete(Cm("one"), {});
  EXPECT_TRUE(IsNotFound(s)) << s.ToString();

  // A bad object is refused with the server's reason.
  auto bad = api_->Create(Cm(), ConfigMap(ns_, "Not_A_Valid_Name", {}));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  EXPECT_EQ(HttpCode(bad.status()), 422);
}

TEST_F(KubeClientE2E, ListPagesWithLimitAndContinue) {
  for (int i = 0; i < 7; ++i) {
    auto r = api_->Create(Cm(), ConfigMap(ns_, "page-" + std::to_string(i), {{"i", std::to_string(i)}},
                                          {{"app", i % 2 == 0 ? "even" : "odd"}}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  ListOptions all;
  all.page_size = 3;
  all.label_selector = "app in (even,odd)";
  auto list = api_->List(Cm(), all);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->items.size(), 7u);
  EXPECT_FALSE(list->resource_version.empty());
  for (const auto& item : list->items) {
    EXPECT_EQ(item.at("kind").as_string(), "ConfigMap");
    EXPECT_EQ(item.at("apiVersion").as_string(), "v1");
  }
  ListOptions even;
  even.label_selector = "app=even";
  list = api_->List(Cm(), even);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->items.size(), 4u);
  ListOptions by_name;
  by_name.field_selector = "metadata.name=page-3";
  list = api_->List(Cm(), by_name);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(Data(list->items[0], "i"), "3");
  // Every namespace.
  list = api_->List({ConfigMaps(), "", "", ""}, even);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_GE(list->items.size(), 4u);
}

TEST_F(KubeClientE2E, ServerSideApplyAndMergePatch) {
  auto applied = api_->Apply(Cm("ssa"), ConfigMap(ns_, "ssa", {{"a", "1"}}, {{"owner", "test"}}));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(Data(*applied, "a"), "1");
  bool ours = false;
  for (const auto& f : applied->at("metadata").at("managedFields").as_array()) {
    ours = ours ||
           (f.at("manager").as_string() == "dispotify-operator" && f.at("operation").as_string() == "Apply");
  }
  EXPECT_TRUE(ours) << applied->serialize();

  // Applying again is idempotent; a field left out of the applied object is removed.
  applied = api_->Apply(Cm("ssa"), ConfigMap(ns_, "ssa", {{"b", "2"}}, {{"owner", "test"}}));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(Data(*applied, "a"), "<none>");
  EXPECT_EQ(Data(*applied, "b"), "2");

  // Another manager's field conflicts with nothing we own; force=true takes over a field it set.
  auto patched = api_->MergePatch(Cm("ssa"), J(R"({"data":{"c":"3"}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ(Data(*patched, "b"), "2");
  EXPECT_EQ(Data(*patched, "c"), "3");
  patched = api_->MergePatch(Cm("ssa"), J(R"({"data":{"b":"other"}})"));
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  applied = api_->Apply(Cm("ssa"), ConfigMap(ns_, "ssa", {{"b", "2"}}, {{"owner", "test"}}));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(Data(*applied, "b"), "2");
  EXPECT_EQ(Data(*applied, "c"), "3");

  auto missing = api_->MergePatch(Cm("nothing-here"), J(R"({"data":{"c":"3"}})"));
  EXPECT_TRUE(IsNotFound(missing.status())) << missing.status().ToString();
}

TEST_F(KubeClientE2E, CustomResourceWithStatusSubresource) {
  ASSERT_NO_FATAL_FAILURE(EnsureWidgets());
  const ResourceType widgets = kWidgets;
  const ResourceRef w1 = Widget("w1");
  const json::value widget = WidgetObject("w1", 3);
  auto applied = api_->Apply(w1, widget);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->at("spec").at("size").as_integer(), 3);

  // The schema is enforced by the server.
  json::value invalid = widget;
  invalid["spec"]["size"] = json::value::number(0);
  auto refused = api_->Apply(w1, invalid);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status().ToString();

  // Status through the subresource; a status in the main resource is ignored.
  json::value status = J(R"({"apiVersion":"e2e.dispotify.io/v1","kind":"Widget","metadata":{"name":"w1"},
                             "status":{"phase":"Ready"}})");
  status["metadata"]["namespace"] = json::value::string(ns_);
  auto with_status = api_->Apply({widgets, ns_, "w1", "status"}, status);
  ASSERT_TRUE(with_status.ok()) << with_status.status().ToString();
  EXPECT_EQ(with_status->at("status").at("phase").as_string(), "Ready");
  json::value main_with_status = widget;
  main_with_status["status"]["phase"] = json::value::string("Broken");
  auto ignored = api_->Apply(w1, main_with_status);
  ASSERT_TRUE(ignored.ok()) << ignored.status().ToString();
  EXPECT_EQ(ignored->at("status").at("phase").as_string(), "Ready");

  // Update of the status subresource with a stale resourceVersion conflicts.
  json::value stale = *applied;
  stale["status"]["phase"] = json::value::string("Stale");
  auto conflict = api_->Update({widgets, ns_, "w1", "status"}, stale);
  EXPECT_TRUE(IsConflict(conflict.status())) << conflict.status().ToString();
  auto fresh = api_->Get(w1);
  ASSERT_TRUE(fresh.ok());
  json::value next = *fresh;
  next["status"]["phase"] = json::value::string("Updated");
  auto updated = api_->Update({widgets, ns_, "w1", "status"}, next);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->at("status").at("phase").as_string(), "Updated");

  auto list = api_->List({widgets, ns_, "", ""}, {});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].at("kind").as_string(), "Widget");

  Status s = api_->Delete(w1, {.propagation_policy = "Background"});
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(Eventually([&] { return IsNotFound(api_->Get(w1).status()); }));
}

// Runs a watch on a thread, collecting its events.
class WatchRun {
 public:
  WatchRun(KubeApi* api, ResourceRef ref, WatchOptions options) {
    thread_ = std::jthread([this, api, ref, options](std::stop_token stop) {
      Status s = api->Watch(
          ref, options,
          [this](const WatchEvent& e) {
            std::lock_guard lock(mu_);
            events_.push_back(e);
          },
          stop);
      std::lock_guard lock(mu_);
      result_ = s;
      done_ = true;
    });
  }
  std::vector<WatchEvent> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  bool done() {
    std::lock_guard lock(mu_);
    return done_;
  }
  Status result() {
    std::lock_guard lock(mu_);
    return result_;
  }
  // Seconds that stopping took.
  double Stop() {
    const auto start = Clock::now();
    thread_.request_stop();
    thread_.join();
    return Seconds(Clock::now() - start);
  }

 private:
  std::mutex mu_;
  std::vector<WatchEvent> events_;
  Status result_;
  bool done_ = false;
  std::jthread thread_;
};

TEST_F(KubeClientE2E, WatchSeesChangesAndStopsPromptly) {
  auto list = api_->List(Cm(), {});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  WatchOptions wo;
  wo.resource_version = list->resource_version;
  wo.timeout = 120s;
  wo.field_selector = "metadata.name=w";  // not the kube-root-ca.crt the controller-manager adds
  WatchRun watch(api_.get(), Cm(), wo);

  auto created = api_->Create(Cm(), ConfigMap(ns_, "w", {{"k", "1"}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  json::value changed = *created;
  changed["data"]["k"] = json::value::string("2");
  ASSERT_TRUE(api_->Update(Cm("w"), changed).ok());
  ASSERT_TRUE(api_->Delete(Cm("w"), {}).ok());

  ASSERT_TRUE(Eventually([&] { return watch.events().size() >= 3; })) << watch.events().size() << " events";
  const auto events = watch.events();
  EXPECT_EQ(events[0].type, WatchEventType::kAdded);
  EXPECT_EQ(events[1].type, WatchEventType::kModified);
  EXPECT_EQ(Data(events[1].object, "k"), "2");
  EXPECT_EQ(events[2].type, WatchEventType::kDeleted);
  for (const auto& e : events) EXPECT_EQ(MetaString(e.object, "name"), "w");
  EXPECT_FALSE(watch.done()) << watch.result().ToString();

  // A quiet watch is cancelled from another thread at once.
  const double took = watch.Stop();
  EXPECT_LT(took, 2.0);
  EXPECT_TRUE(watch.result().ok()) << watch.result().ToString();
}

TEST_F(KubeClientE2E, WatchFromATooOldResourceVersionIsGone) {
  // The watch cache of a type holds the events since its last list of etcd: a fresh server's
  // ConfigMap cache goes back to the very start, but a new custom type's cache starts when the type
  // does, so resourceVersion 1 is too old for it and the server answers 410 Gone.
  ASSERT_NO_FATAL_FAILURE(EnsureWidgets());
  ASSERT_TRUE(api_->Apply(Widget("old"), WidgetObject("old", 1)).ok());
  WatchOptions wo;
  wo.resource_version = "1";
  wo.timeout = 30s;
  std::vector<WatchEvent> events;
  const auto start = Clock::now();
  Status s = api_->Watch(
      Widget(), wo, [&](const WatchEvent& e) { events.push_back(e); }, std::stop_token());
  EXPECT_TRUE(IsGone(s)) << s.ToString();
  EXPECT_EQ(HttpCode(s), 410) << s.ToString();
  EXPECT_LT(Seconds(Clock::now() - start), 10.0);
  // Told as an ERROR event inside a 200 stream (the watch cache's way) or as the answer's status;
  // either way no object event came first.
  for (const auto& e : events) EXPECT_EQ(e.type, WatchEventType::kError) << e.object.serialize();
  std::printf("410 arrived %s: %s\n",
              events.empty() ? "as the HTTP status" : "as an ERROR event in a 200 stream",
              s.ToString().c_str());
}

// Sends the first watch from resourceVersion 1, which is too old for a custom type's watch cache:
// the real server answers 410 Gone.
class FirstWatchTooOld : public KubeApi {
 public:
  explicit FirstWatchTooOld(KubeApi* real) : real_(real) {}
  Result<json::value> Get(const ResourceRef& r) override { return real_->Get(r); }
  Result<ObjectList> List(const ResourceRef& r, const ListOptions& o) override {
    ++lists;
    return real_->List(r, o);
  }
  Status Watch(const ResourceRef& r, const WatchOptions& o, const WatchHandler& h,
               std::stop_token stop) override {
    WatchOptions opts = o;
    if (watches++ == 0) opts.resource_version = "1";
    Status s = real_->Watch(r, opts, h, stop);
    if (IsGone(s)) ++gones;
    return s;
  }
  Result<json::value> Create(const ResourceRef& r, const json::value& o) override {
    return real_->Create(r, o);
  }
  Result<json::value> Update(const ResourceRef& r, const json::value& o) override {
    return real_->Update(r, o);
  }
  Status Delete(const ResourceRef& r, const DeleteOptions& o) override { return real_->Delete(r, o); }
  Result<json::value> Apply(const ResourceRef& r, const json::value& o) override {
    return real_->Apply(r, o);
  }
  Result<json::value> MergePatch(const ResourceRef& r, const json::value& p) override {
    return real_->MergePatch(r, p);
  }

  std::atomic<int> lists{0}, watches{0}, gones{0};

 private:
  KubeApi* real_;
};

TEST_F(KubeClientE2E, InformerKeepsACacheAndRelistsAfterGone) {
  ASSERT_NO_FATAL_FAILURE(EnsureWidgets());
  auto labelled = [&](const std::string& name, const std::string& note, const std::string& app) {
    json::value w = WidgetObject(name, 1, note);
    w["metadata"]["labels"]["app"] = json::value::string(app);
    return w;
  };
  auto note = [](const json::value& w) {
    return w.at("spec").has_field("note") ? w.at("spec").at("note").as_string() : "";
  };
  ASSERT_TRUE(api_->Apply(Widget("a"), labelled("a", "1", "inf")).ok());
  ASSERT_TRUE(api_->Apply(Widget("ignored"), labelled("ignored", "1", "other")).ok());
  FirstWatchTooOld api(api_.get());
  std::mutex mu;
  std::vector<std::string> seen;
  InformerOptions io;
  io.ref = Widget();
  io.label_selector = "app=inf";
  io.watch_timeout = 60s;
  Informer informer(&api, io, [&](ChangeType t, const json::value& obj) {
    std::lock_guard lock(mu);
    seen.push_back(std::string(ChangeTypeName(t)) + " " + MetaString(obj, "name") + " " + note(obj));
  });
  auto seen_now = [&] {
    std::lock_guard lock(mu);
    return seen;
  };
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(10s));
  ASSERT_TRUE(informer.Get(ns_ + "/a").has_value());
  EXPECT_EQ(informer.Get(ns_ + "/a")->at("kind").as_string(), "Widget");
  EXPECT_FALSE(informer.Get(ns_ + "/ignored").has_value());
  // The first watch meets a 410 and the informer lists again.
  ASSERT_TRUE(Eventually([&] { return api.gones >= 1 && api.lists >= 2 && api.watches >= 2; }))
      << api.gones << " gone, " << api.lists << " lists, " << api.watches << " watches";

  ASSERT_TRUE(api_->Apply(Widget("b"), labelled("b", "1", "inf")).ok());
  ASSERT_TRUE(api_->Apply(Widget("a"), labelled("a", "2", "inf")).ok());
  ASSERT_TRUE(api_->Delete(Widget("b"), {}).ok());

  ASSERT_TRUE(Eventually([&] { return seen_now().size() >= 4; })) << ::testing::PrintToString(seen_now());
  EXPECT_EQ(seen_now(), (std::vector<std::string>{"added a 1", "added b 1", "modified a 2", "deleted b 1"}));
  EXPECT_EQ(note(*informer.Get(ns_ + "/a")), "2");
  EXPECT_FALSE(informer.Get(ns_ + "/b").has_value());
  EXPECT_EQ(informer.List().size(), 1u);

  const auto start = Clock::now();
  informer.Stop();
  EXPECT_LT(Seconds(Clock::now() - start), 2.0);
}

// Records leadership changes, checking that two electors never lead at once.
struct Leadership {
  std::mutex mu;
  int leading = 0;
  int max_leading = 0;
  std::map<std::string, Clock::time_point> started, stopped;
  std::map<std::string, int> starts;

  LeaderElectionConfig Config(const std::string& ns, const std::string& identity) {
    LeaderElectionConfig c;
    c.lease_namespace = ns;
    c.lease_name = "operator";
    c.identity = identity;
    c.timing = {.lease_duration = 3000ms, .renew_deadline = 2000ms, .retry_period = 250ms};
    c.on_started_leading = [this, identity] {
      std::lock_guard lock(mu);
      max_leading = std::max(max_leading, ++leading);
      started[identity] = Clock::now();
      ++starts[identity];
    };
    c.on_stopped_leading = [this, identity] {
      std::lock_guard lock(mu);
      --leading;
      stopped[identity] = Clock::now();
    };
    return c;
  }
  // An elector that died without being told to stop (Abandon).
  void Died(const std::string& identity) {
    std::lock_guard lock(mu);
    --leading;
    stopped[identity] = Clock::now();
  }
  // The callbacks run on the elector's thread after IsLeader() turns true: a test that reads
  // the record waits for the count, not for IsLeader().
  int Starts(const std::string& id) {
    std::lock_guard lock(mu);
    return starts[id];
  }
  std::optional<Clock::time_point> StartedAt(const std::string& id) {
    std::lock_guard lock(mu);
    auto it = started.find(id);
    if (it == started.end()) return std::nullopt;
    return it->second;
  }
  std::optional<Clock::time_point> StoppedAt(const std::string& id) {
    std::lock_guard lock(mu);
    auto it = stopped.find(id);
    if (it == stopped.end()) return std::nullopt;
    return it->second;
  }
};

TEST_F(KubeClientE2E, LeaseTakenOverOnlyAfterExpiryWhenTheLeaderDies) {
  Leadership record;
  LeaderElector a(api_.get(), record.Config(ns_, "a"));
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(Eventually([&] { return a.IsLeader(); })) << "a never led";
  LeaderElector b(api_.get(), record.Config(ns_, "b"));
  ASSERT_TRUE(b.Start().ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(b.IsLeader());
  EXPECT_EQ(b.leader(), "a");

  const auto died = Clock::now();
  a.Abandon();  // a crash: the lease is not released
  record.Died("a");
  ASSERT_TRUE(Eventually([&] { return record.Starts("b") == 1; }, 10s)) << "b never took over";
  const double after = Seconds(*record.StartedAt("b") - died);
  std::printf("b took over %.2f s after a died (lease 3 s)\n", after);
  // a's last renewal was at most a retry period before it died; b waits a whole lease from then.
  EXPECT_GE(after, 3.0 - 0.25 - 0.1);
  EXPECT_LT(after, 3.0 + 1.5);
  auto lease = api_->Get({Leases(), ns_, "operator", ""});
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(LeaseRecordFromJson(*lease).holder, "b");
  EXPECT_EQ(LeaseRecordFromJson(*lease).transitions, 1);
  b.Stop();
  EXPECT_EQ(record.max_leading, 1);
}

// Every call hangs for a while and fails while `cut` is set: a leader cut off from the API server.
class Partitionable : public FirstWatchTooOld {
 public:
  explicit Partitionable(KubeApi* real) : FirstWatchTooOld(real) {}
  std::atomic<bool> cut{false};
  Result<json::value> Get(const ResourceRef& r) override {
    if (Hang()) return Status::Unavailable("partitioned");
    return FirstWatchTooOld::Get(r);
  }
  Result<json::value> Update(const ResourceRef& r, const json::value& o) override {
    if (Hang()) return Status::Unavailable("partitioned");
    return FirstWatchTooOld::Update(r, o);
  }
  Result<json::value> Create(const ResourceRef& r, const json::value& o) override {
    if (Hang()) return Status::Unavailable("partitioned");
    return FirstWatchTooOld::Create(r, o);
  }

 private:
  bool Hang() {
    if (!cut) return false;
    std::this_thread::sleep_for(5s);  // longer than the renew deadline
    return true;
  }
};

TEST_F(KubeClientE2E, ADeposedLeaderStopsBeforeAnotherTakesOver) {
  Leadership record;
  Partitionable a_net(api_.get());
  LeaderElector a(&a_net, record.Config(ns_, "a"));
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(Eventually([&] { return a.IsLeader(); })) << "a never led";
  LeaderElector b(api_.get(), record.Config(ns_, "b"));
  ASSERT_TRUE(b.Start().ok());
  std::this_thread::sleep_for(1s);
  ASSERT_FALSE(b.IsLeader());

  bool a_led_when_b_started = true;
  const auto cut = Clock::now();
  a_net.cut = true;
  ASSERT_TRUE(Eventually([&] { return b.IsLeader(); }, 10s)) << "b never took over";
  {
    std::lock_guard lock(record.mu);
    a_led_when_b_started = a.IsLeader();
  }
  ASSERT_TRUE(Eventually([&] { return record.Starts("b") == 1; })) << "b's started callback never ran";
  ASSERT_TRUE(record.StoppedAt("a").has_value()) << "a was never told to stop";
  const double a_stopped = Seconds(*record.StoppedAt("a") - cut);
  const double b_started = Seconds(*record.StartedAt("b") - cut);
  std::printf("cut at 0: a stopped leading at %.2f s (its request still hanging), b started at %.2f s\n",
              a_stopped, b_started);
  EXPECT_FALSE(a_led_when_b_started);
  EXPECT_LE(a_stopped, 2.0 + 0.3);  // the renew deadline after a's last renewal
  EXPECT_LT(*record.StoppedAt("a"), *record.StartedAt("b"));
  EXPECT_GE(b_started, 3.0 - 0.25 - 0.1);
  EXPECT_EQ(record.max_leading, 1);

  // Healed, a stays a follower; when b stops cleanly it releases the lease and a takes over at
  // once, without waiting for an expiry.
  a_net.cut = false;
  std::this_thread::sleep_for(6s);  // a's hanging request returns
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(a.leader(), "b");
  const auto b_stop = Clock::now();
  b.Stop();
  EXPECT_FALSE(b.IsLeader());
  ASSERT_TRUE(Eventually([&] { return record.Starts("a") == 2; }, 10s)) << "a never took the released lease";
  const double handover = Seconds(*record.StartedAt("a") - b_stop);
  std::printf("a took the released lease %.2f s after b stopped\n", handover);
  EXPECT_LT(handover, 1.5);
  EXPECT_LT(*record.StoppedAt("b"), *record.StartedAt("a"));
  a.Stop();
  EXPECT_EQ(record.max_leading, 1);
  EXPECT_EQ(record.starts["a"], 2);
}

TEST_F(KubeClientE2E, EventsAreRecordedAndAggregated) {
  auto cm = api_->Create(Cm(), ConfigMap(ns_, "evented", {}));
  ASSERT_TRUE(cm.ok());
  EventRecorder recorder(api_.get(), "e2e-operator-0");
  recorder.Normal(*cm, "Tested", "the first message");
  recorder.Normal(*cm, "Tested", "the first message");
  recorder.Warning(*cm, "Refused", "would lose quorum");
  // Failing to record is not fatal.
  json::value elsewhere = ConfigMap("no-such-namespace", "x", {});
  recorder.Normal(elsewhere, "Nowhere", "dropped with a warning in the log");

  ListOptions lo;
  lo.field_selector = "involvedObject.name=evented";
  auto events = api_->List({Events(), ns_, "", ""}, lo);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->items.size(), 2u);
  std::map<std::string, json::value> by_reason;
  for (const auto& e : events->items) by_reason[e.at("reason").as_string()] = e;
  const json::value& tested = by_reason["Tested"];
  EXPECT_EQ(tested.at("type").as_string(), "Normal");
  EXPECT_EQ(tested.at("count").as_integer(), 2);
  EXPECT_EQ(tested.at("message").as_string(), "the first message");
  EXPECT_EQ(tested.at("reportingComponent").as_string(), "dispotify-operator");
  EXPECT_EQ(tested.at("reportingInstance").as_string(), "e2e-operator-0");
  EXPECT_EQ(tested.at("involvedObject").at("kind").as_string(), "ConfigMap");
  EXPECT_EQ(tested.at("involvedObject").at("uid").as_string(), MetaString(*cm, "uid"));
  EXPECT_EQ(by_reason["Refused"].at("type").as_string(), "Warning");

  // kubectl sees them.
  auto r = plane().Kubectl({"get", "events", "-n", ns_, "-o", "name"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("evented."), std::string::npos) << r.out;
}

TEST_F(KubeClientE2E, TlsIsVerifiedAndTokensComeFromTheirFile) {
  const std::string good_ca = "    certificate-authority: " + plane().dir() + "/cp/certs/apiserver.crt\n";
  const std::string token = testing_exec::ReadWholeFile(plane().dir() + "/cp/token");
  ASSERT_FALSE(token.empty());
  const ResourceRef default_ns{Namespaces(), "", "default", ""};

  // A CA that did not sign the server's certificate: refused.
  auto made = testing_exec::Exec(
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", plane().dir() + "/bogus.key",
       "-out", plane().dir() + "/bogus.crt", "-days", "1", "-subj", "/CN=bogus"},
      plane().dir() + "/exec");
  ASSERT_EQ(made.code, 0) << made.err;
  auto bogus = LoadKubeconfig(WriteKubeconfig(
      "bogus-ca", "    certificate-authority: " + plane().dir() + "/bogus.crt\n", "    token: " + token));
  ASSERT_TRUE(bogus.ok()) << bogus.status().ToString();
  auto bogus_api = NewHttpsKubeApi(*bogus);
  ASSERT_TRUE(bogus_api.ok());
  auto refused = (*bogus_api)->Get(default_ns);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  std::printf("with a wrong CA: %s\n", refused.status().ToString().c_str());

  // Without a CA but insecure-skip-tls-verify, as the kubeconfig asks.
  auto insecure = LoadKubeconfig(
      WriteKubeconfig("insecure", "    insecure-skip-tls-verify: true\n", "    token: " + token));
  ASSERT_TRUE(insecure.ok()) << insecure.status().ToString();
  auto insecure_api = NewHttpsKubeApi(*insecure);
  ASSERT_TRUE(insecure_api.ok());
  EXPECT_TRUE((*insecure_api)->Get(default_ns).ok());

  // A token file with a wrong token: refused with the server's 401; once the file holds the right
  // one, the same client gets in.
  const std::string token_file = plane().dir() + "/token-file";
  { std::ofstream(token_file) << "wrong-token\n"; }
  auto from_file = LoadKubeconfig(
      WriteKubeconfig("kubeconfig-token-file", good_ca, "    tokenFile: " + token_file + "\n"));
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  auto file_api = NewHttpsKubeApi(*from_file);
  ASSERT_TRUE(file_api.ok());
  auto denied = (*file_api)->Get(default_ns);
  EXPECT_EQ(denied.status().code(), StatusCode::kFailedPrecondition) << denied.status().ToString();
  EXPECT_EQ(HttpCode(denied.status()), 401);
  { std::ofstream(token_file) << token; }
  auto allowed = (*file_api)->Get(default_ns);
  EXPECT_TRUE(allowed.ok()) << allowed.status().ToString();
}

}  // namespace
}  // namespace dispotify::op::kube
