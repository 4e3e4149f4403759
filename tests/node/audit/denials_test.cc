#include "node/audit/denials.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/audit/chain.h"

namespace dispotify::audit {
namespace {

constexpr int64_t kInterval = 60'000;
constexpr int64_t kT0 = 1'765'000'000'000;

TEST(DenialAggregatorTest, OneEntryPerKeyPerInterval) {
  DenialAggregator agg(kInterval);
  EXPECT_TRUE(agg.Flush(kT0).empty());
  for (int i = 0; i < 5; ++i) agg.Record("10.0.0.1:5000", "unauthenticated", kT0 + i);
  agg.Record("10.0.0.1:5000", "forbidden", kT0 + 10, "bob");
  agg.Record("10.0.0.2:5000", "unauthenticated", kT0 + 20);
  // Not yet: the interval is still open.
  EXPECT_TRUE(agg.Flush(kT0 + kInterval - 1).empty());
  auto entries = agg.Flush(kT0 + kInterval);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].client, "10.0.0.1:5000");
  EXPECT_EQ(entries[0].code, "forbidden");
  EXPECT_EQ(entries[0].actor, "bob");
  EXPECT_EQ(entries[1].client, "10.0.0.1:5000");
  EXPECT_EQ(entries[1].code, "unauthenticated");
  EXPECT_EQ(entries[1].actor, kAnonymous);
  EXPECT_TRUE(entries[1].detail.starts_with("count=5 first_ms=1765000000000 last_ms=1765000000004 "))
      << entries[1].detail;
  EXPECT_EQ(entries[2].client, "10.0.0.2:5000");
  for (const auto& e : entries) {
    EXPECT_EQ(e.action, Action::kDenied);
    EXPECT_EQ(e.outcome, Outcome::kDenied);
    EXPECT_EQ(e.time_ms, kT0 + kInterval);
    EXPECT_TRUE(Validate(e).ok());
  }
  EXPECT_EQ(agg.keys(), 0u);
  EXPECT_TRUE(agg.Flush(kT0 + 10 * kInterval).empty());
}

TEST(DenialAggregatorTest, SeveralActorsOnOneKey) {
  DenialAggregator agg(kInterval);
  agg.Record("c", "forbidden", kT0, "alice");
  agg.Record("c", "forbidden", kT0 + 1, "bob");
  agg.Record("c", "forbidden", kT0 + 2, "alice");
  auto entries = agg.FlushAll(kT0 + 3);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].actor, kSeveralActors);
  EXPECT_TRUE(entries[0].detail.starts_with("count=3 "));
}

TEST(DenialAggregatorTest, HostileKeysAreSanitized) {
  DenialAggregator agg(kInterval);
  agg.Record(std::string(10000, 'c') + "\n", "password=hunter2\xff", kT0, std::string(5000, 'a'));
  auto entries = agg.FlushAll(kT0);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(Validate(entries[0]).ok()) << Validate(entries[0]).ToString();
  EXPECT_EQ(entries[0].code.find("hunter2"), std::string::npos);
  EXPECT_TRUE(AppendEntry({}, entries[0]).ok());
}

// 100k denials from 10k clients with 3 reasons: at most max_keys + 1 entries an interval, and
// every denial counted once.
TEST(DenialAggregatorTest, AFloodAddsABoundedNumberOfEntries) {
  DenialAggregator agg(kInterval, DenialAggregator::kDefaultMaxKeys);
  const char* reasons[] = {"unauthenticated", "forbidden", "bad_signature"};
  size_t total_entries = 0;
  uint64_t total_count = 0;
  int64_t now = kT0;
  ChainHead head;
  for (int i = 0; i < 100'000; ++i) {
    now = kT0 + i * 6;  // 100k over 600 s: ten intervals
    agg.Record("198.51.100." + std::to_string(i % 10'000), reasons[i % 3], now);
    EXPECT_LE(agg.keys(), DenialAggregator::kDefaultMaxKeys);
    for (auto& e : agg.Flush(now)) {
      ++total_entries;
      total_count += std::stoull(e.detail.substr(6));
      auto linked = AppendEntry(head, std::move(e));
      ASSERT_TRUE(linked.ok());
      head = HeadOf(*linked);
    }
  }
  auto last = agg.FlushAll(now);
  for (auto& e : last) total_count += std::stoull(e.detail.substr(6));
  total_entries += last.size();
  EXPECT_EQ(total_count, 100'000u);
  // Intervals begin at the first denial after a flush, so 600 s of traffic spans at most 11.
  EXPECT_LE(total_entries, 11 * (DenialAggregator::kDefaultMaxKeys + 1));
  EXPECT_GT(total_entries, 0u);
  std::printf("100k denials -> %zu entries\n", total_entries);
}

TEST(DenialAggregatorTest, OverflowGoesToOneOtherBucket) {
  DenialAggregator agg(kInterval, 3);
  for (int i = 0; i < 10; ++i) agg.Record("c" + std::to_string(i), "forbidden", kT0 + i);
  agg.Record("c0", "forbidden", kT0 + 20);  // a known key still counts on its own
  auto entries = agg.Flush(kT0 + kInterval);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].client, "c0");
  EXPECT_TRUE(entries[0].detail.starts_with("count=2 "));
  EXPECT_EQ(entries[3].client, kOtherClient);
  EXPECT_EQ(entries[3].code, kOtherReason);
  EXPECT_TRUE(entries[3].detail.starts_with("count=7 ")) << entries[3].detail;
}

}  // namespace
}  // namespace dispotify::audit
