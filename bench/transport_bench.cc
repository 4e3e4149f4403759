// Throughput of the gRPC Raft transport between two nodes on loopback.
//
// Node 1 streams AppendEntries (64 entries x 256 B by default) to node 2 and keeps at most
// `window` of them unanswered. In "oneway" mode node 2 only counts them; in "reply" mode it
// answers each with an AppendEntriesResponse on its own stream, as a follower does, and node 1
// counts the replies. Prints messages/s and payload MB/s (entry bytes only, 1 MB = 1e6 B).
//
// Usage: transport_bench [seconds=5] [entries=64] [entry_bytes=256] [window=1024]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "node/transport/grpc_transport.h"

namespace {

using dispotify::LogIndex;
using dispotify::NodeId;
using dispotify::Term;
using dispotify::consensus::Entry;
using dispotify::consensus::EntryType;
using dispotify::consensus::Message;
using dispotify::consensus::MessageType;
using dispotify::transport::GrpcTransport;
using dispotify::transport::GrpcTransportOptions;
using dispotify::transport::LoopbackServer;

struct Config {
  double seconds = 5;
  size_t entries = 64;
  size_t entry_bytes = 256;
  uint64_t window = 1024;
};

void Run(const Config& cfg, bool reply) {
  const NodeId leader(1), follower(2);
  std::atomic<uint64_t> delivered{0};  // AppendEntries at the follower
  std::atomic<uint64_t> acked{0};      // responses at the leader
  GrpcTransport* follower_transport = nullptr;

  GrpcTransportOptions lo;
  lo.self = leader;
  lo.cluster_id = "bench";
  GrpcTransportOptions fo = lo;
  fo.self = follower;

  GrpcTransport lt(
      lo, [&](Message&&) { acked.fetch_add(1, std::memory_order_relaxed); }, nullptr);
  GrpcTransport ft(
      fo,
      [&](Message&& m) {
        delivered.fetch_add(1, std::memory_order_relaxed);
        if (!reply) return;
        Message r;
        r.type = MessageType::kAppendEntriesResponse;
        r.from = follower;
        r.to = leader;
        r.term = m.term;
        r.success = true;
        r.match_index = m.entries.empty() ? m.prev_log_index : m.entries.back().index;
        follower_transport->Send({std::move(r)});
      },
      nullptr);
  follower_transport = &ft;
  auto ls = LoopbackServer::Start({lt.service()}, lo);
  auto fs = LoopbackServer::Start({ft.service()}, fo);
  if (!ls.ok() || !fs.ok()) {
    std::fprintf(stderr, "cannot start servers\n");
    std::exit(1);
  }
  lt.UpdatePeers({{follower, (*fs)->address()}});
  ft.UpdatePeers({{leader, (*ls)->address()}});

  const std::string payload(cfg.entry_bytes, 'p');
  auto& done = reply ? acked : delivered;
  uint64_t sent = 0;
  uint64_t next_index = 1;
  auto make = [&] {
    Message m;
    m.type = MessageType::kAppendEntries;
    m.from = leader;
    m.to = follower;
    m.term = Term(1);
    m.prev_log_index = LogIndex(next_index - 1);
    m.prev_log_term = Term(next_index > 1 ? 1 : 0);
    m.commit = LogIndex(next_index - 1);
    m.entries.reserve(cfg.entries);
    for (size_t i = 0; i < cfg.entries; ++i)
      m.entries.push_back({Term(1), LogIndex(next_index++), EntryType::kNormal, payload});
    return m;
  };

  // Warm up the streams, then measure.
  lt.Send({make()});
  ++sent;
  while (done.load() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const uint64_t base = done.load();
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(cfg.seconds);
  while (std::chrono::steady_clock::now() < end) {
    const uint64_t in_flight = sent - done.load(std::memory_order_relaxed);
    if (in_flight >= cfg.window) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    std::vector<Message> msgs;
    const uint64_t n = std::min<uint64_t>(cfg.window - in_flight, 64);
    for (uint64_t i = 0; i < n; ++i) msgs.push_back(make());
    sent += n;
    lt.Send(std::move(msgs));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t count = done.load() - base;
  const double msgs_per_s = static_cast<double>(count) / secs;
  const double mb_per_s = msgs_per_s * static_cast<double>(cfg.entries * cfg.entry_bytes) / 1e6;
  auto st = lt.stats();
  std::printf(
      "%-7s %zu x %zu B entries: %10.0f msg/s  %8.1f MB/s payload  (%.0f entries/s, %.1f msgs/batch, drops "
      "%lu)\n",
      reply ? "reply" : "oneway", cfg.entries, cfg.entry_bytes, msgs_per_s, mb_per_s,
      msgs_per_s * static_cast<double>(cfg.entries),
      st.batches ? static_cast<double>(st.sent) / static_cast<double>(st.batches) : 0.0,
      static_cast<unsigned long>(st.dropped_queue_full + st.dropped_on_failure));
  lt.Shutdown();
  ft.Shutdown();
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  if (argc > 1) cfg.seconds = std::atof(argv[1]);
  if (argc > 2) cfg.entries = static_cast<size_t>(std::atol(argv[2]));
  if (argc > 3) cfg.entry_bytes = static_cast<size_t>(std::atol(argv[3]));
  if (argc > 4) cfg.window = static_cast<uint64_t>(std::atol(argv[4]));
  Run(cfg, /*reply=*/false);
  Run(cfg, /*reply=*/true);
  return 0;
}
