#include "operator/controller/controller.h"

#include "common/logging.h"

namespace dispotify::op::controller {

using web::json::value;

namespace {

std::string Label(const value& object, std::string_view key) {
  if (!object.has_field("metadata")) return "";
  const value& meta = object.at("metadata");
  if (!meta.has_field("labels")) return "";
  const value& labels = meta.at("labels");
  const std::string k(key);
  return labels.has_field(k) && labels.at(k).is_string() ? labels.at(k).as_string() : "";
}

}  // namespace

Controller::Controller(kube::KubeApi* api, ReconcilerDeps deps, ReconcilerOptions reconciler_options,
                       ControllerOptions options)
    : api_(api), options_(std::move(options)), metrics_(deps.metrics) {
  auto user_may_act = deps.may_act;
  deps.may_act = [this, user_may_act] {
    if (options_.leader_elect && (elector_ == nullptr || !elector_->IsLeader())) return false;
    return user_may_act ? user_may_act() : true;
  };
  reconciler_ = std::make_unique<Reconciler>(std::move(deps), std::move(reconciler_options));
}

Controller::~Controller() {
  Stop();
}

void Controller::EnqueueOwner(const value& object) {
  const std::string instance = Label(object, specs::kLabelInstance);
  const std::string ns = kube::MetaString(object, "namespace");
  if (!instance.empty()) queue_.Add(ns + "/" + instance);
}

Status Controller::Start() {
  kube::InformerOptions clusters{.ref = {DispotifyClusters(), options_.watch_namespace, "", ""}};
  clusters_ = std::make_unique<kube::Informer>(
      api_, clusters, [this](kube::ChangeType, const value& obj) { queue_.Add(kube::ObjectKey(obj)); });
  const std::string managed = std::string(specs::kLabelName) + "=" + std::string(specs::kAppName);
  kube::InformerOptions sets{.ref = {kube::StatefulSets(), options_.watch_namespace, "", ""},
                             .label_selector = managed};
  statefulsets_ = std::make_unique<kube::Informer>(
      api_, sets, [this](kube::ChangeType, const value& obj) { EnqueueOwner(obj); });
  kube::InformerOptions pods{.ref = {kube::Pods(), options_.watch_namespace, "", ""},
                             .label_selector = managed};
  pods_ = std::make_unique<kube::Informer>(api_, pods,
                                           [this](kube::ChangeType, const value& obj) { EnqueueOwner(obj); });
  clusters_->Start();
  statefulsets_->Start();
  pods_->Start();
  stats_.synced = true;

  if (!options_.leader_elect) {
    StartLeading();
    return Status::Ok();
  }
  kube::LeaderElectionConfig election = options_.election;
  election.on_started_leading = [this] { StartLeading(); };
  election.on_stopped_leading = [this] { StopLeading(); };
  elector_ = std::make_unique<kube::LeaderElector>(api_, election);
  return elector_->Start();
}

void Controller::StartLeading() {
  std::lock_guard lock(worker_mu_);
  DLOG_INFO << "operator: leading; reconciling";
  stats_.leading = true;
  // Everything known is looked at once on taking over: the previous leader may have died mid-step.
  for (const auto& obj : clusters_->List()) queue_.Add(kube::ObjectKey(obj));
  worker_ = std::jthread([this](std::stop_token stop) { Work(stop); });
}

void Controller::StopLeading() {
  std::lock_guard lock(worker_mu_);
  stats_.leading = false;
  if (worker_.joinable()) {
    worker_.request_stop();
    worker_.join();  // the pass in flight ends at its next write (may_act is false now)
  }
  DLOG_INFO << "operator: no longer leading; stopped";
}

void Controller::Work(std::stop_token stop) {
  while (auto key = queue_.Get(stop)) {
    const size_t slash = key->find('/');
    const std::string ns = key->substr(0, slash);
    const std::string name = key->substr(slash + 1);
    const auto started = std::chrono::steady_clock::now();
    auto result = reconciler_->Reconcile(ns, name);
    ++stats_.passes;
    if (metrics_ != nullptr) metrics_->Pass(result.ok(), std::chrono::steady_clock::now() - started);
    if (result.ok()) {
      queue_.Forget(*key);
      DLOG_DEBUG << "reconcile " << *key << ": " << result->summary;
      if (result->requeue_after.count() > 0) queue_.AddAfter(*key, result->requeue_after);
    } else {
      ++stats_.failures;
      const auto delay = queue_.AddRateLimited(*key);
      DLOG_WARN << "reconcile " << *key << " failed (again in " << delay.count()
                << " ms): " << result.status().ToString();
    }
    queue_.Done(*key);
  }
}

void Controller::Stop() {
  if (elector_) {
    elector_->Stop();  // calls StopLeading while leading, then releases the lease
    elector_.reset();
  } else {
    StopLeading();
  }
  queue_.ShutDown();
  if (pods_) pods_->Stop();
  if (statefulsets_) statefulsets_->Stop();
  if (clusters_) clusters_->Stop();
}

}  // namespace dispotify::op::controller
