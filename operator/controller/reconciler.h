#pragma once
// One reconcile pass of one DispotifyCluster: observe (the custom resource, its pods, each node's
// /cluster/status), decide (plan::NextStep), write the journal, act, write the status.
//
// Order within a pass, and why:
//   0. the certificates: the CA Secret is created once, the pods' TLS Secret gets a pair for every
//      pod the StatefulSet may run, each renewed at two thirds of its lifetime (the pass is
//      requeued for the earliest renewal); before the StatefulSet, so that a new pod finds its pair;
//   1. the owned objects are applied (server-side apply, idempotent) with the StatefulSet at the
//      size the planner allows: a pod must exist before its node can be added, and must outlive
//      its membership;
//   2. a new journal step is written to status.operation *before* its action is taken, and the
//      action only once that write succeeded: an operator that dies in between finds the step and
//      checks whether it took effect;
//   3. the action (one node admin call or one pod deletion);
//   4. the status (members, conditions, phase), written only when it changed.
// Every write first asks may_act (leader election): a deposed leader stops at the next write.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "operator/certs/certs.h"
#include "operator/controller/metrics.h"
#include "operator/controller/observe.h"
#include "operator/kube/client.h"
#include "operator/kube/events.h"
#include "operator/nodes/nodes.h"
#include "operator/plan/plan.h"
#include "operator/specs/specs.h"

namespace dispotify::op::controller {

kube::ResourceType DispotifyClusters();
kube::ResourceType ServiceMonitors();

struct ReconcilerOptions {
  specs::Settings settings;
  plan::Options plan;
  std::chrono::milliseconds resync{15000};  // next look when the cluster matches its spec
  std::chrono::milliseconds busy{2000};     // next look while a change is in flight or awaited
  certs::Options certificates;              // lifetimes of the CA and of the pods' certificates
  // "<operation type>/<step>" (e.g. "add-member/promote", or "*/promote" for any operation): the
  // process exits right after writing that journal step, before acting on it. For the crash tests;
  // empty in production.
  std::string crash_after_journal;
  // The same, right after the action of that step succeeded (before the next journal write).
  std::string crash_after_action;
};

// Whether `point` ("<type>/<step>", the type may be "*") names the journal step type/step.
bool CrashPointMatches(const std::string& point, const std::string& type, const std::string& step);

struct ReconcilerDeps {
  kube::KubeApi* kube = nullptr;
  kube::EventRecorder* events = nullptr;
  // A node admin client that sends the cluster's admin token.
  std::function<std::unique_ptr<nodes::NodeAdmin>(const std::string& token)> node_admin;
  // The REST base URL of a pod's node; default http://<pod IP>:8080.
  std::function<std::string(const NodeView& view)> node_url;
  std::function<int64_t()> now;            // unix seconds; default the system clock
  std::function<bool()> may_act;           // default always
  std::function<std::string()> new_token;  // default 32 random bytes as hex
  Metrics* metrics = nullptr;              // optional
};

struct Outcome {
  std::chrono::milliseconds requeue_after{0};  // 0: only on the next change
  std::string summary;                         // what the pass did or waits for, for the log
};

class Reconciler {
 public:
  Reconciler(ReconcilerDeps deps, ReconcilerOptions options);
  // Not OK when a step failed and the pass should be retried with backoff.
  Result<Outcome> Reconcile(const std::string& ns, const std::string& name);

 private:
  Result<std::string> AdminToken(const std::string& ns, const std::string& name);
  std::vector<NodeView> Observe(const api::DispotifyCluster& cluster,
                                const std::vector<web::json::value>& pods, nodes::NodeAdmin* admin,
                                const web::json::value& object);
  // Returns the earliest renewal time (Unix seconds) of the pods' certificates, 0 for none.
  Result<int64_t> Certificates(const api::DispotifyCluster& cluster, int32_t pods,
                               const web::json::value& object, int64_t now);
  Status ApplyOwned(const api::DispotifyCluster& cluster, const plan::Decision& decision,
                    const plan::Observed& observed, const std::string& token);
  Status ExpandVolumes(const api::DispotifyCluster& cluster, int32_t pods);
  Status WriteStatus(const api::DispotifyCluster& cluster, const api::ClusterStatus& status);
  Status Act(const api::DispotifyCluster& cluster, const plan::Decision& decision,
             const std::vector<NodeView>& views, nodes::NodeAdmin* admin);
  Status Gate() const;

  ReconcilerDeps deps_;
  const ReconcilerOptions options_;

  // Per cluster ("ns/name"): the Secrets' data as last checked and found in order, and until when
  // that check holds (the first renewal, of a pod or the CA warning).
  struct CertCacheEntry {
    std::string fingerprint;
    int64_t next_renewal = 0;
    int64_t look_again_at = 0;
  };
  std::mutex cert_cache_mu_;
  std::map<std::string, CertCacheEntry> cert_cache_;
};

}  // namespace dispotify::op::controller
