#include "node/audit/retention.h"

#include <gtest/gtest.h>

#include <vector>

namespace dispotify::audit {
namespace {

constexpr int64_t kDay = 24LL * 3600 * 1000;

// Entries first..last, one a day, the first `first_day` days after the epoch.
std::vector<Entry> Days(uint64_t first, uint64_t last, int64_t first_day) {
  std::vector<Entry> out;
  for (uint64_t seq = first; seq <= last; ++seq) {
    Entry e;
    e.seq = seq;
    e.time_ms = (first_day + static_cast<int64_t>(seq - first)) * kDay;
    out.push_back(e);
  }
  return out;
}

TEST(RetentionTest, Table) {
  struct Row {
    const char* what;
    Retention retention;
    uint64_t first, last_read, head;
    int64_t now_day;
    uint64_t max_batch;
    uint64_t want;
  };
  const Row rows[] = {
      {"no limits", {0, 0}, 1, 100, 100, 1000, 1000, 0},
      {"nothing is old yet", {30 * kDay, 0}, 1, 100, 100, 30, 1000, 0},
      // Entry seq s was written on day s-1: with now = day 100 and 30 days, days < 70 go.
      {"by age", {30 * kDay, 0}, 1, 100, 100, 100, 1000, 70},
      {"by age, after an earlier trim", {30 * kDay, 0}, 41, 100, 100, 100, 1000, 70},
      {"by count", {0, 10}, 1, 100, 100, 0, 1000, 90},
      {"by count, only part read", {0, 10}, 1, 50, 100, 0, 1000, 50},
      {"the stricter limit wins", {30 * kDay, 50}, 1, 100, 100, 100, 1000, 70},
      {"the stricter limit wins (count)", {90 * kDay, 20}, 1, 100, 100, 100, 1000, 80},
      {"batch cap", {0, 1}, 1, 100, 100, 0, 16, 16},
      {"never the head", {1, 0}, 1, 100, 100, 100000, 1000, 99},
      {"a single entry stays", {1, 1}, 7, 7, 7, 100000, 1000, 0},
      {"within the count", {0, 100}, 1, 100, 100, 0, 1000, 0},
      {"zero batch", {0, 1}, 1, 100, 100, 0, 0, 0},
  };
  for (const Row& r : rows) {
    const auto entries = Days(r.first, r.last_read, static_cast<int64_t>(r.first) - 1);
    EXPECT_EQ(TrimThrough(r.retention, entries, r.head, r.now_day * kDay, r.max_batch), r.want) << r.what;
  }
  EXPECT_EQ(TrimThrough({kDay, 1}, {}, 10, 100 * kDay, 1000), 0u) << "nothing read";
}

TEST(RetentionTest, AYoungEntryStopsTheAgeTrimEvenIfOlderOnesFollow) {
  auto entries = Days(1, 10, 0);   // days 0..9
  entries[3].time_ms = 50 * kDay;  // a node whose clock ran ahead wrote seq 4
  EXPECT_EQ(TrimThrough({30 * kDay, 0}, entries, 10, 60 * kDay, 1000), 3u);
}

}  // namespace
}  // namespace dispotify::audit
