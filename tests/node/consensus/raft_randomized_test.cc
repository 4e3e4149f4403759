// Randomized nemesis runs (ScyllaDB's randomized_nemesis_test is the model): for each seed, a
// 3- or 5-node cluster on a lossy, reordering, duplicating network, with crashes (also during a
// write, before fsync), restarts, symmetric and one-way partitions, leadership transfers,
// snapshots, a stream of client appends and linearizable reads. The simulated cluster checks
// election safety, log matching, leader completeness and state machine safety after every
// simulated millisecond; at the end every acknowledged write must be on every member, and every
// read must have returned a prefix of the final state.
//
// DISPOTIFY_SIM_SEEDS=N runs N seeds (default DISPOTIFY_SIM_DEFAULT_SEEDS, set by tests/CMakeLists.txt:
// 500 in release builds, fewer under sanitizers and in debug builds); DISPOTIFY_SIM_SEED=S reruns
// one seed alone.

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

#include "tests/sim/sim_cluster.h"

#ifndef DISPOTIFY_SIM_DEFAULT_SEEDS
#define DISPOTIFY_SIM_DEFAULT_SEEDS 500
#endif

namespace dispotify::sim {
namespace {

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

void RunSeed(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&rng](int lo, int hi) {
    return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  auto chance = [&rng](int percent) { return static_cast<int>(rng() % 100) < percent; };

  SimOptions o;
  o.seed = seed;
  o.nodes = chance(50) ? 3 : 5;
  o.snapshot_interval = chance(50) ? 0 : static_cast<uint64_t>(pick(5, 40));
  o.snapshot_chunk_bytes = static_cast<uint64_t>(pick(8, 256));
  o.max_entries_per_append = static_cast<size_t>(pick(1, 64));
  o.net.drop_rate = pick(0, 10) / 100.0;
  o.net.duplicate_rate = pick(0, 5) / 100.0;
  o.net.max_delay_ms = pick(1, 25);
  SimCluster c(o);
  const bool debug = std::getenv("DISPOTIFY_SIM_DEBUG") != nullptr;
  const int max_down = (o.nodes - 1) / 2;

  int value = 0;
  for (int event = 0; event < 25; ++event) {
    NodeId l = c.Leader();
    if (l != kNoNode) {
      int writes = pick(0, 6);
      for (int i = 0; i < writes; ++i)
        (void)c.SubmitPut(l, "k" + std::to_string(pick(0, 3)), std::to_string(value++));
    }
    auto live = c.live_ids();
    int down = o.nodes - static_cast<int>(live.size());
    int what = pick(0, 99);
    if (debug) {
      std::cout << "t=" << c.now_ms() << " event " << what << " leader " << l;
      for (NodeId id : c.ids()) {
        if (!c.node(id).up) {
          std::cout << " | n" << id << " down";
          continue;
        }
        const auto& r = c.raft(id);
        std::cout << " | n" << id << " " << consensus::RoleName(r.role())[0] << " T" << r.term() << " last "
                  << r.last_index() << " c" << r.commit_index() << " voters";
        for (const auto& [mid, m] : r.conf().members) std::cout << (m.voter ? " " : " ~") << mid;
      }
      std::cout << "\n";
    }
    if (what < 15 && down < max_down) {
      c.Crash(live[rng() % live.size()]);
    } else if (what < 25 && down < max_down) {
      c.CrashDuringNextWrite(live[rng() % live.size()]);
    } else if (what < 40) {
      for (NodeId id : c.ids()) c.Restart(id);
    } else if (what < 50) {
      std::set<NodeId> a;
      std::set<NodeId> b;
      for (NodeId id : c.ids()) (chance(50) ? a : b).insert(id);
      c.Partition({a, b});
    } else if (what < 57) {
      auto ids = c.ids();
      c.BlockLink(ids[rng() % ids.size()], ids[rng() % ids.size()]);
    } else if (what < 70) {
      c.Heal();
    } else if (what < 77 && l != kNoNode) {
      (void)c.raft(l).TransferLeadership(NodeId(static_cast<uint64_t>(pick(1, o.nodes))));
    } else if (what < 85 && l != kNoNode) {
      (void)c.Read(l, "k" + std::to_string(pick(0, 3)), 300);
    } else if (what < 95 && l != kNoNode) {
      // Membership: add a fresh learner, promote a learner, or remove a voter (never the last
      // three). Removed ids are never reused: a removed member does not come back.
      const auto& conf = c.raft(l).conf();
      std::vector<NodeId> learners;
      std::vector<NodeId> voters;
      for (const auto& [id, m] : conf.members) (m.voter ? voters : learners).push_back(id);
      consensus::ConfChange cc;
      if (!learners.empty() && chance(60)) {
        cc = {consensus::ConfChangeType::kPromote, learners[rng() % learners.size()], "sim"};
      } else if (voters.size() > 3 && chance(50)) {
        cc = {consensus::ConfChangeType::kRemove, voters[rng() % voters.size()], ""};
      } else if (conf.members.size() < 7) {
        NodeId fresh(c.ids().back().value() + 1);
        c.AddFreshNode(fresh);
        cc = {consensus::ConfChangeType::kAddLearner, fresh, "sim"};
      }
      if (cc.node != kNoNode) {
        auto p = c.raft(l).ProposeConfChange(cc);
        if (debug) {
          std::cout << "t=" << c.now_ms() << " leader " << l << " T" << c.raft(l).term()
                    << " conf change type " << static_cast<int>(cc.type) << " node " << cc.node << " -> "
                    << (p.ok() ? "index " + std::to_string(p->index.value()) : p.status().ToString()) << "\n";
        }
      }
    }
    c.Run(pick(10, 250));
  }

  c.Heal();
  c.SetNetwork({});
  c.CancelPendingCrashes();
  for (NodeId id : c.ids()) c.Restart(id);
  bool final_write = c.Put("final", "write", 20000);
  if (!final_write && std::getenv("DISPOTIFY_SIM_DEBUG") != nullptr) {
    for (NodeId id : c.live_ids()) {
      const auto& r = c.raft(id);
      std::cout << "node " << id << " role " << consensus::RoleName(r.role()) << " term " << r.term()
                << " leader " << r.leader() << " last " << r.last_index() << " commit " << r.commit_index()
                << " voters " << r.conf().VoterCount() << " removed " << r.removed() << " up "
                << c.node(id).up << " applied " << c.node(id).applied << " transfer " << r.transfer_target()
                << " propose " << c.raft(id).Propose("probe").status().ToString() << "\n";
    }
  }
  ASSERT_TRUE(final_write) << "seed " << seed << ": the healed cluster must accept writes";
  ASSERT_TRUE(c.WaitConverged(20000)) << "seed " << seed << ": the healed cluster must converge";
  auto r = c.Read(c.Leader(), "k0", 5000);
  EXPECT_TRUE(r.has_value()) << "seed " << seed;
  c.CheckAckedWritesPresent();
  ASSERT_EQ(c.failures(), 0) << "seed " << seed << " failed; rerun alone with DISPOTIFY_SIM_SEED=" << seed;
}

TEST(RaftRandomized, ManySeedsKeepEveryAcknowledgedWrite) {
  if (const char* one = std::getenv("DISPOTIFY_SIM_SEED")) {
    uint64_t seed = std::strtoull(one, nullptr, 10);
    std::cout << "seed " << seed << "\n";
    RunSeed(seed);
    return;
  }
  uint64_t seeds = EnvOr("DISPOTIFY_SIM_SEEDS", DISPOTIFY_SIM_DEFAULT_SEEDS);
  uint64_t base = EnvOr("DISPOTIFY_SIM_SEED_BASE", 1);
  std::cout << "running seeds " << base << ".." << base + seeds - 1 << "\n";
  for (uint64_t s = base; s < base + seeds; ++s) {
    RunSeed(s);
    if (HasFailure()) {
      std::cout << "first failing seed: " << s << "\n";
      return;
    }
  }
}

}  // namespace
}  // namespace dispotify::sim
