#pragma once
// What the controller reports for its metrics. Implemented with Prometheus beside the binary
// (operator/metrics), so that no Prometheus header reaches the controller; tests may leave it out.

#include <chrono>
#include <string_view>

namespace dispotify::op::controller {

class Metrics {
 public:
  virtual ~Metrics() = default;
  // One reconcile pass ended: `ok` false when it failed and was requeued with backoff.
  virtual void Pass(bool ok, std::chrono::duration<double> took) = 0;
  // An action taken on a cluster (plan::ActionName: add-learner, promote, remove-member, ...)
  // within an operation (add-member, ...; "" for none), and whether it succeeded.
  virtual void Action(std::string_view operation, std::string_view action, bool ok) = 0;
  // A refusal reported (plan::Refusal::reason).
  virtual void Refusal(std::string_view reason) = 0;
};

}  // namespace dispotify::op::controller
