#include "operator/metrics/prometheus_metrics.h"

#include <gtest/gtest.h>

namespace dispotify::op::metrics {
namespace {

TEST(PrometheusMetricsTest, ExposesPassesActionsRefusalsQueueAndLeadership) {
  PrometheusMetrics m;
  std::string text = m.Scrape(0, false);
  // Both results exist before any pass: a rate over them is defined from the start.
  EXPECT_NE(text.find("dispotify_operator_reconciles_total{result=\"ok\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("dispotify_operator_reconciles_total{result=\"error\"} 0"), std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_leader 0"), std::string::npos);

  m.Pass(true, std::chrono::milliseconds(30));
  m.Pass(false, std::chrono::seconds(2));
  m.Action("add-member", "add-learner", true);
  m.Action("add-member", "add-learner", true);
  m.Action("", "set-replication-factor", false);
  m.Refusal("WouldLoseQuorum");
  text = m.Scrape(3, true);
  EXPECT_NE(text.find("dispotify_operator_reconciles_total{result=\"ok\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("dispotify_operator_reconciles_total{result=\"error\"} 1"), std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_reconcile_duration_seconds_count 2"), std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_reconcile_duration_seconds_bucket{le=\"0.05\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_actions_total{action=\"add-learner\",operation=\"add-member\","
                      "result=\"ok\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_actions_total{action=\"set-replication-factor\",operation=\"none\","
                      "result=\"error\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_refusals_total{reason=\"WouldLoseQuorum\"} 1"), std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_queue_depth 3"), std::string::npos);
  EXPECT_NE(text.find("dispotify_operator_leader 1"), std::string::npos);
}

}  // namespace
}  // namespace dispotify::op::metrics
