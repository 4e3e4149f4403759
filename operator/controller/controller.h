#pragma once
// The controller: informers on DispotifyClusters, their StatefulSets and pods feed a work queue
// keyed by cluster; one worker runs the Reconciler on each key, requeueing it after the delay the
// pass asks for (nodes change without a Kubernetes event) or with backoff after a failure.
//
// With leader election, the informers run on every replica (a warm cache for a fast takeover) and
// the worker only while this replica leads; a pass stops at its next write once leadership is lost
// (ReconcilerDeps::may_act), and on_stopped_leading waits for the pass in flight to end.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "operator/controller/reconciler.h"
#include "operator/controller/work_queue.h"
#include "operator/kube/informer.h"
#include "operator/kube/leader_election.h"

namespace dispotify::op::controller {

struct ControllerOptions {
  std::string watch_namespace;  // "" for every namespace
  bool leader_elect = true;
  kube::LeaderElectionConfig election;  // namespace, name, identity, timing (callbacks are set here)
};

struct ControllerStats {
  std::atomic<uint64_t> passes{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> leading{false};
  std::atomic<bool> synced{false};
};

class Controller {
 public:
  Controller(kube::KubeApi* api, ReconcilerDeps deps, ReconcilerOptions reconciler_options,
             ControllerOptions options);
  ~Controller();  // Stop()
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  Status Start();
  void Stop();
  const ControllerStats& stats() const { return stats_; }
  // Keys waiting in the work queue.
  size_t QueueDepth() const { return queue_.Len(); }

 private:
  void StartLeading();
  void StopLeading();
  void Work(std::stop_token stop);
  void EnqueueOwner(const web::json::value& object);

  kube::KubeApi* const api_;
  const ControllerOptions options_;
  std::unique_ptr<Reconciler> reconciler_;
  WorkQueue queue_;
  ControllerStats stats_;
  Metrics* const metrics_;
  std::unique_ptr<kube::Informer> clusters_, statefulsets_, pods_;
  std::unique_ptr<kube::LeaderElector> elector_;
  std::mutex worker_mu_;  // guards worker_ (start/stop leading)
  std::jthread worker_;
};

}  // namespace dispotify::op::controller
