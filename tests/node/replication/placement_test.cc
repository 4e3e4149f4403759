#include "node/replication/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace dispotify::replication {
namespace {

constexpr size_t kFiles = 10000;
constexpr size_t kReplicas = 3;

std::vector<NodeId> Nodes(uint64_t first, uint64_t last) {
  std::vector<NodeId> out;
  for (uint64_t i = first; i <= last; ++i) out.emplace_back(i);
  return out;
}

std::string FileId(size_t i) {
  return "song-" + std::to_string(i) + ".mp3";
}

TEST(RingPositionTest, FirstEightBytesOfMd5BigEndian) {
  // MD5("abc") = 900150983cd24fb0 d6963f7d28e17f72
  EXPECT_EQ(RingPosition("abc"), 0x900150983cd24fb0ULL);
  EXPECT_EQ(RingPosition(""), 0xd41d8cd98f00b204ULL);
}

TEST(PlacementTest, DistinctNodesAndFewerWhenTheRingIsSmall) {
  const PlacementRing empty({});
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.Placement("x", 3).empty());
  EXPECT_EQ(empty.Primary("x"), kNoNode);

  const PlacementRing ring(Nodes(1, 5));
  EXPECT_EQ(ring.nodes(), Nodes(1, 5));
  EXPECT_TRUE(ring.Placement("x", 0).empty());
  for (size_t i = 0; i < 200; ++i) {
    for (size_t r = 1; r <= 7; ++r) {
      const std::vector<NodeId> p = ring.Placement(FileId(i), r);
      ASSERT_EQ(p.size(), std::min<size_t>(r, 5));
      EXPECT_EQ(std::set<NodeId>(p.begin(), p.end()).size(), p.size()) << "duplicate node";
      // A smaller R is a prefix of a larger one.
      const std::vector<NodeId> p1 = ring.Placement(FileId(i), 1);
      EXPECT_EQ(p.front(), p1.front());
      EXPECT_EQ(ring.Primary(FileId(i)), p1.front());
    }
  }
}

TEST(PlacementTest, DeterministicWhateverTheInsertionOrder) {
  const PlacementRing a(Nodes(1, 7));
  const PlacementRing b(
      {NodeId(7), NodeId(3), NodeId(5), NodeId(1), NodeId(2), NodeId(6), NodeId(4), NodeId(3)});
  EXPECT_EQ(a.nodes(), b.nodes());
  for (size_t i = 0; i < kFiles; ++i) ASSERT_EQ(a.Placement(FileId(i), 3), b.Placement(FileId(i), 3));
}

// The placement is a pure function of the member ids and the key: these values hold in every
// process, on every machine, in every version (changing them moves data in a running cluster).
// Cross-checked with an independent implementation (Python hashlib.md5 + bisect).
TEST(PlacementTest, StableAcrossProcesses) {
  const PlacementRing ring(Nodes(1, 5));
  std::map<std::string, std::vector<NodeId>> golden = {
      {"song-0.mp3", {NodeId(4), NodeId(3), NodeId(1)}},
      {"song-1.mp3", {NodeId(5), NodeId(3), NodeId(1)}},
      {"song-9999.mp3", {NodeId(2), NodeId(3), NodeId(5)}},
      {"abc", {NodeId(1), NodeId(3), NodeId(4)}},
  };
  for (const auto& [id, want] : golden) EXPECT_EQ(ring.Placement(id, 3), want) << id;
}

struct Spread {
  double max_dev_primary = 0;  // max |share - mean| / mean over the nodes
  double max_dev_replicas = 0;
};

Spread MeasureSpread(size_t n) {
  const PlacementRing ring(Nodes(1, n));
  std::map<NodeId, size_t> primary;
  std::map<NodeId, size_t> replicas;
  for (size_t i = 0; i < kFiles; ++i) {
    const std::vector<NodeId> p = ring.Placement(FileId(i), kReplicas);
    ++primary[p.front()];
    for (NodeId node : p) ++replicas[node];
  }
  Spread s;
  const double mean_primary = static_cast<double>(kFiles) / static_cast<double>(n);
  const double mean_replicas = static_cast<double>(kFiles * std::min(kReplicas, n)) / static_cast<double>(n);
  for (NodeId node : ring.nodes()) {
    s.max_dev_primary = std::max(s.max_dev_primary,
                                 std::abs(static_cast<double>(primary[node]) - mean_primary) / mean_primary);
    s.max_dev_replicas = std::max(
        s.max_dev_replicas, std::abs(static_cast<double>(replicas[node]) - mean_replicas) / mean_replicas);
  }
  return s;
}

TEST(PlacementTest, LoadSpreadWithin25PercentOfTheMean) {
  for (size_t n : {3, 5, 10, 20}) {
    const Spread s = MeasureSpread(n);
    std::printf("spread: nodes=%zu files=%zu max_dev_primary=%.1f%% max_dev_replicas(R=3)=%.1f%%\n", n,
                kFiles, 100 * s.max_dev_primary, 100 * s.max_dev_replicas);
    EXPECT_LE(s.max_dev_primary, 0.25) << n << " nodes";
    EXPECT_LE(s.max_dev_replicas, 0.25) << n << " nodes";
  }
}

TEST(PlacementTest, AddingANodeMovesAboutROverNOfTheFiles) {
  for (size_t n : {3, 4, 5, 10, 19}) {
    const PlacementRing before(Nodes(1, n));
    const PlacementRing after(Nodes(1, n + 1));
    const NodeId added(n + 1);
    size_t set_changed = 0;
    size_t primary_changed = 0;
    for (size_t i = 0; i < kFiles; ++i) {
      const std::vector<NodeId> old_set = before.Placement(FileId(i), kReplicas);
      const std::vector<NodeId> new_set = after.Placement(FileId(i), kReplicas);
      if (old_set.front() != new_set.front()) {
        ++primary_changed;
        EXPECT_EQ(new_set.front(), added) << "a primary moved to an old node";
      }
      if (std::set<NodeId>(old_set.begin(), old_set.end()) ==
          std::set<NodeId>(new_set.begin(), new_set.end()))
        continue;
      ++set_changed;
      // Only the new node comes in, and it pushes out exactly one old holder (when the old set
      // was full).
      EXPECT_NE(std::find(new_set.begin(), new_set.end(), added), new_set.end());
      size_t kept = 0;
      for (NodeId node : new_set) kept += std::count(old_set.begin(), old_set.end(), node);
      EXPECT_EQ(kept, new_set.size() - 1);
    }
    const double n1 = static_cast<double>(n + 1);
    const double frac_set = static_cast<double>(set_changed) / kFiles;
    const double frac_primary = static_cast<double>(primary_changed) / kFiles;
    const double theory_set = std::min(1.0, static_cast<double>(kReplicas) / n1);
    std::printf(
        "add: nodes %zu->%zu replica sets changed=%.3f (theory R/N=%.3f) primaries moved=%.3f (theory "
        "1/N=%.3f)\n",
        n, n + 1, frac_set, theory_set, frac_primary, 1.0 / n1);
    EXPECT_LT(frac_set, 2 * theory_set);
    EXPECT_GT(frac_set, 0.5 * theory_set);
    EXPECT_LT(frac_primary, 2.0 / n1);
    EXPECT_GT(frac_primary, 0.5 / n1);
  }
}

TEST(PlacementTest, RemovingANodeMovesOnlyTheFilesItHeld) {
  for (size_t n : {4, 5, 10, 20}) {
    const PlacementRing before(Nodes(1, n));
    const NodeId removed(n / 2);
    std::vector<NodeId> rest = Nodes(1, n);
    rest.erase(std::find(rest.begin(), rest.end(), removed));
    const PlacementRing after(rest);
    size_t held = 0;
    for (size_t i = 0; i < kFiles; ++i) {
      const std::vector<NodeId> old_set = before.Placement(FileId(i), kReplicas);
      const std::vector<NodeId> new_set = after.Placement(FileId(i), kReplicas);
      const bool had = std::find(old_set.begin(), old_set.end(), removed) != old_set.end();
      held += had ? 1 : 0;
      if (!had) {
        EXPECT_EQ(old_set, new_set) << "a file the removed node did not hold moved";
        continue;
      }
      // The survivors keep their copies, in the same order; one new holder is appended.
      std::vector<NodeId> survivors = old_set;
      survivors.erase(std::find(survivors.begin(), survivors.end(), removed));
      ASSERT_EQ(new_set.size(), std::min(kReplicas, n - 1));
      EXPECT_TRUE(std::equal(survivors.begin(), survivors.end(), new_set.begin()));
    }
    std::printf("remove: nodes %zu->%zu files moved=%.3f (= the removed node's share; theory R/N=%.3f)\n", n,
                n - 1, static_cast<double>(held) / kFiles,
                static_cast<double>(kReplicas) / static_cast<double>(n));
  }
}

}  // namespace
}  // namespace dispotify::replication
