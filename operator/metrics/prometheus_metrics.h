#pragma once
// The operator's own metrics in Prometheus form (docs/operator.md lists them): reconcile passes by
// result and their duration, the work queue's depth, actions by operation, action and result,
// refusals by reason, and whether this replica leads.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>

#include "operator/controller/metrics.h"

namespace dispotify::op::metrics {

class PrometheusMetrics : public controller::Metrics {
 public:
  PrometheusMetrics();

  void Pass(bool ok, std::chrono::duration<double> took) override;
  void Action(std::string_view operation, std::string_view action, bool ok) override;
  void Refusal(std::string_view reason) override;

  // The text exposition of every metric; the gauges are read from these callbacks first.
  std::string Scrape(size_t queue_depth, bool leading);

 private:
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& passes_;
  prometheus::Histogram& duration_;
  prometheus::Family<prometheus::Counter>& actions_;
  prometheus::Family<prometheus::Counter>& refusals_;
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& leading_;
};

}  // namespace dispotify::op::metrics
