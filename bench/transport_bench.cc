// Throughput of the gRPC Raft transport between two nodes on loopback.
//
// Node 1 streams AppendEntries (64 entries x 256 B by default) to node 2 and keeps at most
// `window` of them unanswered. In "oneway" mode node 2 only counts them; in "reply" mode it
// answers each with an AppendEntriesResponse on its own stream, as a follower does, and node 1
// counts the replies. Prints messages/s and payload MB/s (entry bytes only, 1 MB = 1e6 B).
// Each mode runs twice in the same process: plaintext, then mutual TLS as the node uses it
// (common/tls/grpc_credentials.h: certificates from a throwaway CA, the per-stream authorization
// and per-message sender check on). Then the cost of a connection: the mean time from a new
// channel to a connected one (TCP + HTTP/2, + the TLS 1.3 handshake with both certificates
// verified), over `connects` fresh connections each way.
//
// Usage: transport_bench [seconds=5] [entries=64] [entry_bytes=256] [window=1024] [connects=200]

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/tls/grpc_credentials.h"
#include "common/tls/pki.h"
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

struct Config {
  double seconds = 5;
  size_t entries = 64;
  size_t entry_bytes = 256;
  uint64_t window = 1024;
  int connects = 200;
};

// A server on 127.0.0.1 carrying `service` as the node's would (ConfigureServerBuilder), with
// `credentials` (plaintext when null). Port 0: the kernel picks one.
struct Server {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

Server StartServer(grpc::Service* service, const GrpcTransportOptions& options,
                   const std::shared_ptr<grpc::ServerCredentials>& credentials) {
  Server s;
  grpc::ServerBuilder builder;
  dispotify::transport::ConfigureServerBuilder(options, &builder);
  builder.AddListeningPort("127.0.0.1:0", credentials ? credentials : grpc::InsecureServerCredentials(),
                           &s.port);
  builder.RegisterService(service);
  s.server = builder.BuildAndStart();
  if (!s.server || s.port == 0) {
    std::fprintf(stderr, "cannot start a server\n");
    std::exit(1);
  }
  return s;
}

template <typename T>
T Must(dispotify::Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

// Both nodes' security, from a CA made for this run in a temp dir.
struct Tls {
  std::string dir;
  std::shared_ptr<dispotify::tls::GrpcSecurity> node[3];
  std::unique_ptr<dispotify::tls::PeerAuthorizer> authorizer[3];

  Tls() {
    namespace tls = dispotify::tls;
    dir = "/tmp/dispotify-transport-bench-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    const auto now = std::chrono::system_clock::now();
    tls::CertifiedKey ca = Must(tls::CreateCa("bench", tls::Validity::Days(now, 1)));
    std::ofstream(dir + "/ca.crt") << Must(tls::CertToPem(ca.cert.get()));
    for (uint64_t id : {1, 2}) {
      tls::LeafRequest req;
      req.identity = tls::Identity::Node("bench", NodeId(id));
      req.ip_addresses = {"127.0.0.1"};
      req.validity = tls::Validity::Days(now, 1);
      tls::CertifiedKey leaf = Must(tls::IssueLeaf(ca, req));
      const std::string base = dir + "/node-" + std::to_string(id);
      std::ofstream(base + ".crt") << Must(tls::CertToPem(leaf.cert.get()));
      std::ofstream(base + ".key") << Must(tls::KeyToPem(leaf.key.get()));
      tls::GrpcSecurityOptions o;
      o.files = {base + ".crt", base + ".key", dir + "/ca.crt"};
      o.cluster_id = "bench";
      o.expected_identity = req.identity;
      o.publish_dir = base + "-published";
      node[id] = Must(tls::GrpcSecurity::Create(o));
      authorizer[id] = std::make_unique<tls::PeerAuthorizer>("bench", NodeId(id), [] {
        return std::set<NodeId>{NodeId(1), NodeId(2)};
      });
    }
  }
  ~Tls() {
    for (auto& n : node) n.reset();
    std::filesystem::remove_all(dir);
  }
};

void Run(const Config& cfg, bool reply, Tls* tls) {
  const NodeId leader(1), follower(2);
  std::atomic<uint64_t> delivered{0};  // AppendEntries at the follower
  std::atomic<uint64_t> acked{0};      // responses at the leader
  GrpcTransport* follower_transport = nullptr;

  GrpcTransportOptions lo;
  lo.self = leader;
  lo.cluster_id = "bench";
  GrpcTransportOptions fo = lo;
  fo.self = follower;
  if (tls) {
    lo.channel_credentials = tls->node[1]->ChannelCredentials();
    lo.authorizer = tls->authorizer[1].get();
    fo.channel_credentials = tls->node[2]->ChannelCredentials();
    fo.authorizer = tls->authorizer[2].get();
  }

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
  Server ls = StartServer(lt.service(), lo, tls ? tls->node[1]->ServerCredentials() : nullptr);
  Server fs = StartServer(ft.service(), fo, tls ? tls->node[2]->ServerCredentials() : nullptr);
  lt.UpdatePeers({{follower, fs.address()}});
  ft.UpdatePeers({{leader, ls.address()}});

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
      "%-7s %-9s %zu x %zu B entries: %10.0f msg/s  %8.1f MB/s payload  (%.0f entries/s, %.1f msgs/batch, "
      "drops %lu)\n",
      reply ? "reply" : "oneway", tls ? "mtls" : "plaintext", cfg.entries, cfg.entry_bytes, msgs_per_s,
      mb_per_s, msgs_per_s * static_cast<double>(cfg.entries),
      st.batches ? static_cast<double>(st.sent) / static_cast<double>(st.batches) : 0.0,
      static_cast<unsigned long>(st.dropped_queue_full + st.dropped_on_failure));
  lt.Shutdown();
  ft.Shutdown();
  ls.server->Shutdown(std::chrono::system_clock::now());
  fs.server->Shutdown(std::chrono::system_clock::now());
}

// Mean time from a new channel to a connected one, `n` times, each on its own connection.
void Connects(int n, Tls* tls) {
  GrpcTransportOptions o;
  o.self = NodeId(2);
  o.cluster_id = "bench";
  GrpcTransport t(
      o, [](Message&&) {}, nullptr);
  Server server = StartServer(t.service(), o, tls ? tls->node[2]->ServerCredentials() : nullptr);
  auto creds = tls ? tls->node[1]->ChannelCredentials() : grpc::InsecureChannelCredentials();
  double total = 0;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    const auto start = std::chrono::steady_clock::now();
    auto channel = grpc::CreateCustomChannel(server.address(), creds, args);
    if (channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++ok;
    }
  }
  std::printf("connect %-9s %d connections: %8.3f ms each (mean)%s\n", tls ? "mtls" : "plaintext", ok,
              ok ? total / ok * 1e3 : 0.0, ok == n ? "" : " (some failed)");
  t.Shutdown();
  server.server->Shutdown(std::chrono::system_clock::now());
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  if (argc > 1) cfg.seconds = std::atof(argv[1]);
  if (argc > 2) cfg.entries = static_cast<size_t>(std::atol(argv[2]));
  if (argc > 3) cfg.entry_bytes = static_cast<size_t>(std::atol(argv[3]));
  if (argc > 4) cfg.window = static_cast<uint64_t>(std::atol(argv[4]));
  if (argc > 5) cfg.connects = std::atoi(argv[5]);
  Tls tls;
  for (bool reply : {false, true}) {
    Run(cfg, reply, nullptr);
    Run(cfg, reply, &tls);
  }
  Connects(cfg.connects, nullptr);
  Connects(cfg.connects, &tls);
  return 0;
}
