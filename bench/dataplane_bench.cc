// Data-plane figures with real dispotify-node processes on loopback (same harness as the e2e
// tests): upload throughput with R=3, repair after the loss of a node, and the fraction of copies
// that move when a 4th and a 5th node join. Prints one line per figure; asserts nothing.
//
//   dispotify-dataplane-bench [--total-mib 1024] [--file-mib 16] [--rebalance-files 300]
//                             [--repair-bytes-per-s N]   (the nodes' repair throttle; 0 = none)
//
// Repair: 4 nodes, R=3, --total-mib of files; a node that is not the leader is killed (kill -9)
// and removed from the cluster; the time is from the removal until every song has R healthy
// copies on the remaining members again.
// Rebalance: 3 nodes, R=3, --rebalance-files small files; node 4 joins (registers as a learner;
// its share moves to it), then node 5; after each join, copies made / copies in all.
// Ideal fractions: R/N of the files gain the new node, i.e. 1/N of all copies move.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dispotify/v1/cluster.grpc.pb.h"
#include "e2e/cluster_harness.h"
#include "e2e/files_client.h"
#include "node/replication/placement.h"

namespace {

using namespace std::chrono_literals;
using dispotify::e2e::Cluster;
using dispotify::e2e::FilesClient;
using dispotify::e2e::HealthyReplicas;
using Clock = std::chrono::steady_clock;

struct Options {
  uint64_t total_mib = 1024;
  uint64_t file_mib = 16;
  int rebalance_files = 300;
  std::string repair_bytes_per_s = "0";
};

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "dataplane-bench: %s\n", why.c_str());
  std::exit(1);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Polls until every listed song has `r` healthy copies, all on `members`.
bool WaitReplicated(FilesClient& client, const std::vector<std::string>& ids, size_t r,
                    const std::set<uint64_t>& members, std::chrono::seconds timeout) {
  const auto end = Clock::now() + timeout;
  do {
    bool done = true;
    for (const auto& id : ids) {
      auto song = client.GetSong(id);
      if (!song || static_cast<size_t>(song->replicas_size()) != r) {
        done = false;
        break;
      }
      auto healthy = HealthyReplicas(*song);
      if (healthy.size() != r) {
        done = false;
        break;
      }
      for (uint64_t n : healthy) done = done && members.contains(n);
      if (!done) break;
    }
    if (done) return true;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < end);
  return false;
}

bool Remove(Cluster& c, uint64_t leader, uint64_t id) {
  auto stub =
      dispotify::v1::Cluster::NewStub(grpc::CreateChannel(c.spec(leader).address(), c.ChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  dispotify::v1::MembershipRequest req;
  req.set_op(dispotify::v1::MembershipRequest::REMOVE);
  req.set_node_id(id);
  dispotify::v1::MembershipResponse resp;
  return stub->ChangeMembership(&ctx, req, &resp).ok();
}

std::vector<std::string> CommonFlags(const Options& o) {
  return {"--repair-interval-ms", "200",
          "--scrub-interval-s",   "0",
          "--repair-bytes-per-s", o.repair_bytes_per_s,
          "--log-level",          "warning"};
}

void RepairFigure(const Options& o) {
  Cluster c(4, "bench-repair");
  c.SetCommonFlags(CommonFlags(o));
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  if (leader == 0) Die("no leader");
  FilesClient client(c.spec(leader).address(), c.ChannelCredentials());
  const uint64_t files = std::max<uint64_t>(1, o.total_mib / o.file_mib);
  std::vector<std::string> ids;
  const auto up_start = Clock::now();
  for (uint64_t i = 0; i < files; ++i) {
    std::string id = "repair-" + std::to_string(i);
    auto st = client.UploadEventually(id, RandomBytes(o.file_mib << 20, static_cast<uint32_t>(i)));
    if (!st.ok()) Die("upload failed: " + st.error_message());
    ids.push_back(id);
  }
  const double up_s = Seconds(Clock::now() - up_start);
  std::printf("upload: files=%lu file_mib=%lu R=3 nodes=4 seconds=%.2f MBps=%.1f\n",
              static_cast<unsigned long>(files), static_cast<unsigned long>(o.file_mib), up_s,
              static_cast<double>(files * (o.file_mib << 20)) / 1e6 / up_s);
  if (!WaitReplicated(client, ids, 3, {1, 2, 3, 4}, 600s)) Die("files never reached R=3");

  uint64_t victim = leader == 4 ? 3 : 4;
  auto before = client.DataPlaneStatus();
  c.Kill9(victim);
  const auto start = Clock::now();
  if (!Remove(c, leader, victim)) Die("could not remove the dead node");
  std::set<uint64_t> members = {1, 2, 3, 4};
  members.erase(victim);
  if (!WaitReplicated(client, ids, 3, members, 1800s)) Die("repair did not finish");
  const double secs = Seconds(Clock::now() - start);
  auto after = client.DataPlaneStatus();
  const uint64_t bytes = after && before ? after->bytes_copied() - before->bytes_copied() : 0;
  std::printf(
      "repair: lost_node_data_mib=%.0f bytes_copied=%lu seconds=%.2f MBps=%.1f throttle=%s total_mib=%lu\n",
      static_cast<double>(bytes) / (1 << 20), static_cast<unsigned long>(bytes), secs,
      static_cast<double>(bytes) / 1e6 / secs, o.repair_bytes_per_s.c_str(),
      static_cast<unsigned long>(o.total_mib));
}

void RebalanceFigure(const Options& o) {
  Cluster c(3, "bench-rebalance");
  c.SetCommonFlags(CommonFlags(o));
  c.StartAll();
  uint64_t leader = c.WaitLeader();
  if (leader == 0) Die("no leader");
  FilesClient client(c.spec(leader).address(), c.ChannelCredentials());
  std::vector<std::string> ids;
  for (int i = 0; i < o.rebalance_files; ++i) {
    std::string id = "rebalance-" + std::to_string(i);
    auto st = client.UploadEventually(id, RandomBytes(16 * 1024, static_cast<uint32_t>(i)));
    if (!st.ok()) Die("upload failed: " + st.error_message());
    ids.push_back(id);
  }
  std::set<uint64_t> members = {1, 2, 3};
  if (!WaitReplicated(client, ids, 3, members, 120s)) Die("files never reached R=3");
  for (int join = 4; join <= 5; ++join) {
    uint64_t id = c.AddSpec();
    auto before = client.DataPlaneStatus();
    const auto start = Clock::now();
    c.Start(id, {"--join"}, 3);
    members.insert(id);
    // Where the ring puts each file once the new node is a member: it should hold exactly those.
    std::vector<dispotify::NodeId> ring_nodes;
    for (uint64_t m : members) ring_nodes.emplace_back(m);
    dispotify::replication::PlacementRing ring(ring_nodes);
    uint64_t expected = 0;
    for (const auto& f : ids) {
      for (auto n : ring.Placement(f, 3)) expected += n.value() == id ? 1 : 0;
    }
    FilesClient joined(c.spec(id).address(), c.ChannelCredentials());
    bool settled = false;
    while (Clock::now() - start < 300s && !settled) {
      std::this_thread::sleep_for(200ms);
      auto st = joined.DataPlaneStatus();
      settled = st && st->local_files() == expected && WaitReplicated(client, ids, 3, members, 0s);
    }
    auto after = client.DataPlaneStatus();
    if (!settled || !before || !after) Die("rebalance did not settle");
    const uint64_t moved = after->copies_made() - before->copies_made();
    const double total = 3.0 * static_cast<double>(ids.size());
    std::printf("rebalance: join=%d files=%zu copies_moved=%lu fraction=%.3f ideal=%.3f seconds=%.2f\n", join,
                ids.size(), static_cast<unsigned long>(moved), static_cast<double>(moved) / total, 1.0 / join,
                Seconds(Clock::now() - start));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--total-mib") {
      o.total_mib = std::stoull(value);
    } else if (flag == "--file-mib") {
      o.file_mib = std::stoull(value);
    } else if (flag == "--rebalance-files") {
      o.rebalance_files = std::stoi(value);
    } else if (flag == "--repair-bytes-per-s") {
      o.repair_bytes_per_s = value;
    } else {
      Die("unknown flag " + flag);
    }
  }
  RebalanceFigure(o);
  RepairFigure(o);
  return 0;
}
