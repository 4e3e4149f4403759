#include "operator/metrics/prometheus_metrics.h"

#include <prometheus/text_serializer.h>

namespace dispotify::op::metrics {

PrometheusMetrics::PrometheusMetrics()
    : passes_(prometheus::BuildCounter()
                  .Name("dispotify_operator_reconciles_total")
                  .Help("Reconcile passes by result (ok, error: retried with backoff)")
                  .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("dispotify_operator_reconcile_duration_seconds")
                    .Help("Time of one reconcile pass (observe the nodes, decide, apply, act)")
                    .Register(*registry_)
                    .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                                     1, 2.5, 5, 10, 30})),
      actions_(prometheus::BuildCounter()
                   .Name("dispotify_operator_actions_total")
                   .Help("Actions taken on clusters (membership changes, R, pod restarts) by operation, "
                         "action and result")
                   .Register(*registry_)),
      refusals_(prometheus::BuildCounter()
                    .Name("dispotify_operator_refusals_total")
                    .Help("Reconcile passes that reported a refusal, by reason")
                    .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("dispotify_operator_queue_depth")
                       .Help("Cluster keys waiting in the work queue")
                       .Register(*registry_)
                       .Add({})),
      leading_(prometheus::BuildGauge()
                   .Name("dispotify_operator_leader")
                   .Help("1 while this replica holds the leader election lease")
                   .Register(*registry_)
                   .Add({})) {
  // Both results exist from the start, so a rate over them is defined before the first failure.
  passes_.Add({{"result", "ok"}});
  passes_.Add({{"result", "error"}});
}

void PrometheusMetrics::Pass(bool ok, std::chrono::duration<double> took) {
  passes_.Add({{"result", ok ? "ok" : "error"}}).Increment();
  duration_.Observe(took.count());
}

void PrometheusMetrics::Action(std::string_view operation, std::string_view action, bool ok) {
  actions_
      .Add({{"operation", operation.empty() ? "none" : std::string(operation)},
            {"action", std::string(action)},
            {"result", ok ? "ok" : "error"}})
      .Increment();
}

void PrometheusMetrics::Refusal(std::string_view reason) {
  refusals_.Add({{"reason", std::string(reason)}}).Increment();
}

std::string PrometheusMetrics::Scrape(size_t queue_depth, bool leading) {
  queue_depth_.Set(static_cast<double>(queue_depth));
  leading_.Set(leading ? 1 : 0);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace dispotify::op::metrics
