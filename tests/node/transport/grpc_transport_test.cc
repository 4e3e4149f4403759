#include "node/transport/grpc_transport.h"

#include <arpa/inet.h>
#include <grpcpp/server_context.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dispotify/v1/raft.grpc.pb.h"

// Debian's gRPC (and its absl) is not built with TSan: its synchronisation (absl atomics,
// combiners, epoll) is invisible to TSan, so every hand-off through the library looks like a race.
// Ignore accesses made from inside uninstrumented libraries; our code's accesses stay checked.
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_options() {
  return "ignore_noninstrumented_modules=1";
}
#endif

namespace dispotify::transport {
namespace {

using consensus::EntryType;
using consensus::Message;
using consensus::MessageType;
using namespace std::chrono_literals;

// Polls `pred` until it holds or `timeout` passes; tests never sleep blindly.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// Everything a transport handed to its Handler.
class Inbox {
 public:
  Transport::Handler handler() {
    return [this](Message&& m) {
      std::lock_guard lk(mu_);
      msgs_.push_back(std::move(m));
    };
  }
  size_t size() const {
    std::lock_guard lk(mu_);
    return msgs_.size();
  }
  size_t CountFrom(NodeId from) const {
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (const Message& m : msgs_) n += m.from == from ? 1 : 0;
    return n;
  }
  std::vector<Message> Snapshot() const {
    std::lock_guard lk(mu_);
    return msgs_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Message> msgs_;
};

class UnreachableLog {
 public:
  Transport::UnreachableHandler handler() {
    return [this](NodeId id) {
      std::lock_guard lk(mu_);
      ++counts_[id];
    };
  }
  int Count(NodeId id) const {
    std::lock_guard lk(mu_);
    auto it = counts_.find(id);
    return it == counts_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<NodeId, int> counts_;
};

// Options for tests that count on lossless delivery: a connection attempt that times out drops
// the peer's queue (Raft retransmits), so on a loaded machine (sanitizers, parallel ctest) the
// connect timeout must be generous for exact counts to hold.
GrpcTransportOptions LosslessOptions(NodeId self) {
  GrpcTransportOptions o;
  o.self = self;
  o.cluster_id = "test-cluster";
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  o.connect_timeout = 10s;
  return o;
}

GrpcTransportOptions TestOptions(NodeId self, std::string cluster = "test-cluster") {
  GrpcTransportOptions o;
  o.self = self;
  o.cluster_id = std::move(cluster);
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  o.connect_timeout = 500ms;
  return o;
}

// A transport serving on its own loopback server.
struct TestNode {
  static std::unique_ptr<TestNode> Start(const GrpcTransportOptions& options, int port = 0) {
    auto node = std::make_unique<TestNode>();
    node->transport =
        std::make_unique<GrpcTransport>(options, node->inbox.handler(), node->unreachable.handler());
    auto server = LoopbackServer::Start({node->transport->service()}, options, port);
    if (!server.ok()) {
      ADD_FAILURE() << server.status().ToString();
      return nullptr;
    }
    node->server = std::move(server).value();
    return node;
  }
  ~TestNode() { Stop(); }
  // Transport first: its Shutdown ends the incoming streams the server would wait for.
  void Stop() {
    if (transport) transport->Shutdown();
    if (server) server->Shutdown();
  }
  NodeId id() const { return transport->options().self; }
  std::string address() const { return server->address(); }

  Inbox inbox;
  UnreachableLog unreachable;
  std::unique_ptr<GrpcTransport> transport;
  std::unique_ptr<LoopbackServer> server;
};

// An AppendEntries whose read_seq numbers it within its sender's stream.
Message Append(NodeId from, NodeId to, uint64_t seq, size_t n_entries = 1, size_t entry_bytes = 16) {
  Message m;
  m.type = MessageType::kAppendEntries;
  m.from = from;
  m.to = to;
  m.term = Term(3);
  m.prev_log_index = LogIndex(seq * n_entries);
  m.prev_log_term = Term(3);
  m.commit = LogIndex(seq);
  m.read_seq = seq;
  for (size_t i = 1; i <= n_entries; ++i) {
    m.entries.push_back({Term(3), LogIndex(seq * n_entries + i), EntryType::kNormal,
                         std::string(entry_bytes, static_cast<char>('a' + seq % 26))});
  }
  return m;
}

// Checks that `inbox` holds exactly seq 0..n-1 from `from`, in order and intact.
void ExpectInOrder(const Inbox& inbox, NodeId from, uint64_t n) {
  uint64_t next = 0;
  for (const Message& m : inbox.Snapshot()) {
    if (m.from != from) continue;
    ASSERT_EQ(m.read_seq, next) << "from node " << from;
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].data, std::string(16, static_cast<char>('a' + next % 26)));
    ++next;
  }
  EXPECT_EQ(next, n) << "from node " << from;
}

// A port on which nothing listens (connections are refused).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A listening socket that never accepts: the kernel completes TCP handshakes, and then nothing
// ever answers (a peer that hangs, or a black hole behind a middlebox).
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A TCP proxy to `target` that can freeze: it then stops moving bytes but keeps the connections
// open, like a peer that hangs (SIGSTOP, a dead VM behind a live kernel, a black-holed route).
class FreezableProxy {
 public:
  explicit FreezableProxy(int target_port) : target_port_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~FreezableProxy() {
    stop_ = true;
    accept_thread_.join();  // first: it is the one that adds pumps
    for (auto& t : pumps_) t.join();
    ::close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void Freeze() { frozen_ = true; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    return addr;
  }
  void AcceptLoop() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 10) <= 0) continue;
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = Loopback(target_port_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }
  void Pump(int a, int b) {
    char buf[16384];
    while (!stop_) {
      if (frozen_) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      pollfd pfds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(pfds, 2, 10) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if (pfds[i].revents == 0) continue;
        ssize_t n = ::read(pfds[i].fd, buf, sizeof(buf));
        closed = n <= 0 || ::write(pfds[1 - i].fd, buf, static_cast<size_t>(n)) != n;
      }
      if (closed) break;
    }
    ::close(a);
    ::close(b);
  }

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> frozen_{false};
  std::thread accept_thread_;
  std::vector<std::thread> pumps_;  // touched by the accept thread only, until it is joined
};

// A Raft server that accepts streams and never reads them: writes to it stall on flow control.
class StalledRaftService final : public v1::Raft::Service {
 public:
  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReader<v1::RaftBatch>*,
                      v1::StreamSummary*) override {
    ++streams_;
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(5ms);
    return grpc::Status::OK;
  }
  int streams() const { return streams_.load(); }

 private:
  std::atomic<int> streams_{0};
};

// ---------------------------------------------------------------------------------------------

TEST(GrpcTransportTest, TwoNodesExchangeThousandsOfMessagesInOrder) {
  constexpr uint64_t kN = 5000;
  auto opts = [](NodeId id) {
    GrpcTransportOptions o = LosslessOptions(id);
    o.queue_max_messages = 2 * kN;  // everything is sent up front
    return o;
  };
  auto a = TestNode::Start(opts(NodeId(1)));
  auto b = TestNode::Start(opts(NodeId(2)));
  ASSERT_TRUE(a && b);
  a->transport->UpdatePeers({{a->id(), a->address()}, {b->id(), b->address()}});
  b->transport->UpdatePeers({{a->id(), a->address()}, {b->id(), b->address()}});

  std::thread a_sends([&] {
    for (uint64_t i = 0; i < kN; i += 250) {
      std::vector<Message> msgs;
      for (uint64_t j = i; j < i + 250; ++j) msgs.push_back(Append(a->id(), b->id(), j));
      a->transport->Send(std::move(msgs));
    }
  });
  std::vector<Message> msgs;
  for (uint64_t j = 0; j < kN; ++j) msgs.push_back(Append(b->id(), a->id(), j));
  b->transport->Send(std::move(msgs));
  a_sends.join();

  ASSERT_TRUE(Eventually([&] { return a->inbox.size() == kN && b->inbox.size() == kN; }, 10s))
      << a->inbox.size() << " " << b->inbox.size();
  ExpectInOrder(b->inbox, a->id(), kN);
  ExpectInOrder(a->inbox, b->id(), kN);

  GrpcTransport::Stats sa = a->transport->stats();
  EXPECT_EQ(sa.sent, kN);
  EXPECT_EQ(sa.received, kN);
  EXPECT_LT(sa.batches, kN) << "messages queued together should share a write";
  EXPECT_EQ(sa.stream_failures, 0u);
  EXPECT_EQ(a->unreachable.Count(b->id()), 0);
  EXPECT_EQ(b->unreachable.Count(a->id()), 0);
}

TEST(GrpcTransportTest, ThreeNodesAllToAllInOrderPerSender) {
  constexpr uint64_t kN = 2000;
  std::vector<std::unique_ptr<TestNode>> nodes;
  std::map<NodeId, std::string> peers;
  for (uint64_t id = 1; id <= 3; ++id) {
    GrpcTransportOptions o = LosslessOptions(NodeId(id));
    o.queue_max_messages = 2 * kN;
    nodes.push_back(TestNode::Start(o));
    ASSERT_TRUE(nodes.back());
    peers[NodeId(id)] = nodes.back()->address();
  }
  for (auto& n : nodes) n->transport->UpdatePeers(peers);

  std::vector<std::thread> senders;
  senders.reserve(nodes.size());
  for (auto& n : nodes) {
    senders.emplace_back([&, node = n.get()] {
      for (uint64_t i = 0; i < kN; i += 100) {
        std::vector<Message> msgs;
        for (uint64_t j = i; j < i + 100; ++j) {
          for (auto& to : nodes) {
            if (to.get() != node) msgs.push_back(Append(node->id(), to->id(), j));
          }
        }
        node->transport->Send(std::move(msgs));
      }
    });
  }
  for (auto& t : senders) t.join();

  ASSERT_TRUE(Eventually(
      [&] {
        for (auto& n : nodes) {
          if (n->inbox.size() != 2 * kN) return false;
        }
        return true;
      },
      10s));
  for (auto& to : nodes) {
    for (auto& from : nodes) {
      if (from != to) ExpectInOrder(to->inbox, from->id(), kN);
    }
  }
}

TEST(GrpcTransportTest, LargeSnapshotChunksAndBatchSplitting) {
  GrpcTransportOptions o = LosslessOptions(NodeId(1));
  o.max_batch_bytes = 1 << 20;
  auto a = TestNode::Start(o);
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  a->transport->UpdatePeers({{b->id(), b->address()}});

  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 3; ++i) {
    Message m;
    m.type = MessageType::kInstallSnapshot;
    m.from = a->id();
    m.to = b->id();
    m.term = Term(5);
    m.snapshot.index = LogIndex(100);
    m.snapshot.term = Term(4);
    m.snapshot.conf.members[a->id()] = {a->address(), true};
    m.snapshot.conf.members[b->id()] = {b->address(), true};
    m.offset = i * (8u << 20);
    m.data = std::string(8u << 20, static_cast<char>('0' + i));  // above gRPC's default 4 MiB limit
    m.chunk_length = m.data.size();
    m.done = i == 2;
    msgs.push_back(std::move(m));
  }
  for (uint64_t j = 0; j < 100; ++j) msgs.push_back(Append(a->id(), b->id(), j, 1, 16 << 10));
  a->transport->Send(std::move(msgs));

  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 103; }, 10s)) << b->inbox.size();
  auto got = b->inbox.Snapshot();
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(got[i].type, MessageType::kInstallSnapshot);
    EXPECT_EQ(got[i].offset, i * (8u << 20));
    EXPECT_EQ(got[i].data, std::string(8u << 20, static_cast<char>('0' + i)));
    EXPECT_EQ(got[i].done, i == 2);
  }
  EXPECT_GE(a->transport->stats().batches, 4u) << "1 MiB batches: one per chunk, then the appends";
}

TEST(GrpcTransportTest, NeverStartedPeerDoesNotBlockLivePeerAndIsReportedOnce) {
  auto a = TestNode::Start(TestOptions(NodeId(1)));
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  const NodeId dead(3);
  a->transport->UpdatePeers({{b->id(), b->address()}, {dead, "127.0.0.1:" + std::to_string(ClosedPort())}});

  // Keep sending to both through several reconnection attempts to the dead one.
  uint64_t seq = 0;
  ASSERT_TRUE(Eventually([&] {
    a->transport->Send({Append(a->id(), b->id(), seq), Append(a->id(), dead, seq)});
    ++seq;
    return a->transport->stats().stream_failures >= 3;
  }));
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == seq; }));
  ExpectInOrder(b->inbox, a->id(), seq);
  EXPECT_EQ(a->unreachable.Count(dead), 1) << "once per failure episode";
  EXPECT_EQ(a->unreachable.Count(b->id()), 0);
  EXPECT_GT(a->transport->stats().dropped_on_failure, 0u);
}

TEST(GrpcTransportTest, PeerStoppedMidwayIsReportedAndOthersKeepReceiving) {
  auto a = TestNode::Start(TestOptions(NodeId(1)));
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  auto c = TestNode::Start(TestOptions(NodeId(3)));
  ASSERT_TRUE(a && b && c);
  a->transport->UpdatePeers({{b->id(), b->address()}, {c->id(), c->address()}});

  uint64_t seq = 0;
  auto send_both = [&] {
    a->transport->Send({Append(a->id(), b->id(), seq), Append(a->id(), c->id(), seq)});
    ++seq;
  };
  for (int i = 0; i < 100; ++i) send_both();
  ASSERT_TRUE(Eventually([&] { return c->inbox.size() == 100; }));

  c->Stop();
  ASSERT_TRUE(Eventually([&] {
    send_both();
    return a->unreachable.Count(c->id()) > 0;
  }));
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == seq; }));
  ExpectInOrder(b->inbox, a->id(), seq);
  EXPECT_EQ(a->unreachable.Count(c->id()), 1);
  EXPECT_EQ(a->unreachable.Count(b->id()), 0);
}

TEST(GrpcTransportTest, RestartedPeerOnSamePortReceivesAgainAfterBackoff) {
  auto a = TestNode::Start(TestOptions(NodeId(1)));
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  const int port = b->server->port();
  a->transport->UpdatePeers({{b->id(), b->address()}});

  uint64_t seq = 0;
  auto send = [&] { a->transport->Send({Append(a->id(), NodeId(2), seq++)}); };
  send();
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 1; }));

  for (int episode = 1; episode <= 2; ++episode) {
    b.reset();  // the peer goes away...
    ASSERT_TRUE(Eventually([&] {
      send();
      return a->unreachable.Count(NodeId(2)) == episode;
    }));
    b = TestNode::Start(TestOptions(NodeId(2)), port);  // ... and comes back on the same port
    ASSERT_TRUE(b);
    ASSERT_TRUE(Eventually([&] {
      send();
      return b->inbox.size() > 0;
    })) << "episode "
        << episode;
    // What arrives after reconnecting is in order.
    auto got = b->inbox.Snapshot();
    for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1].read_seq, got[i].read_seq);
  }
  EXPECT_EQ(a->unreachable.Count(NodeId(2)), 2) << "one report per failure episode";
}

TEST(GrpcTransportTest, WrongClusterAndWrongTargetAreDropped) {
  auto a = TestNode::Start(TestOptions(NodeId(1), "cluster-a"));
  auto b = TestNode::Start(TestOptions(NodeId(2), "cluster-b"));
  auto c = TestNode::Start(TestOptions(NodeId(3), "cluster-a"));
  ASSERT_TRUE(a && b && c);
  // a believes node 4 lives where c does.
  a->transport->UpdatePeers({{b->id(), b->address()}, {NodeId(4), c->address()}, {c->id(), c->address()}});

  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 10; ++i) msgs.push_back(Append(a->id(), b->id(), i));
  for (uint64_t i = 0; i < 5; ++i) msgs.push_back(Append(a->id(), NodeId(4), i));
  msgs.push_back(Append(a->id(), c->id(), 0));  // the one that counts
  a->transport->Send(std::move(msgs));

  ASSERT_TRUE(Eventually([&] { return b->transport->stats().rejected_cluster == 10; }));
  ASSERT_TRUE(Eventually([&] { return c->transport->stats().rejected_target == 5 && c->inbox.size() == 1; }));
  EXPECT_EQ(b->inbox.size(), 0u);
  EXPECT_EQ(c->inbox.Snapshot()[0].to, c->id());
  EXPECT_EQ(b->transport->stats().received, 0u);
}

TEST(GrpcTransportTest, UnknownPeersAndSelfAreDroppedAndPeersCanChange) {
  auto a = TestNode::Start(TestOptions(NodeId(1)));
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  a->transport->Send({Append(a->id(), b->id(), 0), Append(a->id(), a->id(), 0)});
  EXPECT_EQ(a->transport->stats().dropped_unknown_peer, 2u);

  a->transport->UpdatePeers({{b->id(), b->address()}});
  a->transport->Send({Append(a->id(), b->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 1; }));

  a->transport->UpdatePeers({});
  a->transport->Send({Append(a->id(), b->id(), 1)});
  EXPECT_EQ(a->transport->stats().dropped_unknown_peer, 3u);

  // b moves to another port: the old address is forgotten, the new one used.
  b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(b);
  a->transport->UpdatePeers({{b->id(), b->address()}});
  a->transport->Send({Append(a->id(), b->id(), 2)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 1; }));
  EXPECT_EQ(b->inbox.Snapshot()[0].read_seq, 2u);
}

// A node waiting to be added knows no member: it answers at the address the sender's batches
// carry, until UpdatePeers lists the sender (whose address then wins).
TEST(GrpcTransportTest, ASenderWithNoKnownAddressIsAnsweredAtTheAddressItSends) {
  const int a_port = ClosedPort();
  GrpcTransportOptions a_options = TestOptions(NodeId(1));
  a_options.self_address = "127.0.0.1:" + std::to_string(a_port);
  auto a = TestNode::Start(a_options, a_port);
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  a->transport->UpdatePeers({{b->id(), b->address()}});

  a->transport->Send({Append(a->id(), b->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 1; }));
  b->transport->Send({Append(b->id(), a->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return a->inbox.CountFrom(b->id()) == 1; }));
  EXPECT_EQ(b->transport->stats().dropped_unknown_peer, 0u);

  // Once b's membership lists a, that address wins, even a wrong one (nothing listens there).
  b->transport->UpdatePeers({{a->id(), "127.0.0.1:" + std::to_string(ClosedPort())}});
  a->transport->Send({Append(a->id(), b->id(), 1)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 2; }));
  b->transport->Send({Append(b->id(), a->id(), 1)});
  ASSERT_TRUE(Eventually([&] { return b->transport->stats().stream_failures >= 1; }));
  EXPECT_EQ(a->inbox.CountFrom(b->id()), 1u);

  // A sender from another cluster teaches nothing.
  GrpcTransportOptions x_options = TestOptions(NodeId(3), "other-cluster");
  x_options.self_address = a->address();
  auto x = TestNode::Start(x_options);
  ASSERT_TRUE(x);
  x->transport->UpdatePeers({{b->id(), b->address()}});
  x->transport->Send({Append(x->id(), b->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return b->transport->stats().rejected_cluster == 1; }));
  b->transport->Send({Append(b->id(), x->id(), 0)});
  EXPECT_EQ(b->transport->stats().dropped_unknown_peer, 1u);
}

// The command level a node speaks travels with its batches; the receiver keeps the last one per
// sender, and nothing from a sender of another cluster.
TEST(GrpcTransportTest, EachSendersCommandLevelIsKept) {
  GrpcTransportOptions a_options = TestOptions(NodeId(1));
  a_options.command_level = 7;
  auto a = TestNode::Start(a_options);
  auto b = TestNode::Start(TestOptions(NodeId(2)));  // a version before levels: sends 0
  GrpcTransportOptions x_options = TestOptions(NodeId(3), "other-cluster");
  x_options.command_level = 9;
  auto x = TestNode::Start(x_options);
  ASSERT_TRUE(a && b && x);
  a->transport->UpdatePeers({{b->id(), b->address()}});
  b->transport->UpdatePeers({{a->id(), a->address()}, {x->id(), x->address()}});
  x->transport->UpdatePeers({{b->id(), b->address()}});
  EXPECT_TRUE(b->transport->PeerCommandLevels().empty());
  a->transport->Send({Append(a->id(), b->id(), 0)});
  x->transport->Send({Append(x->id(), b->id(), 0)});
  ASSERT_TRUE(
      Eventually([&] { return b->inbox.size() == 1 && b->transport->stats().rejected_cluster == 1; }));
  EXPECT_EQ(b->transport->PeerCommandLevels(), (std::map<NodeId, uint32_t>{{a->id(), 7u}}));
  b->transport->Send({Append(b->id(), a->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return a->inbox.CountFrom(b->id()) == 1; }));
  EXPECT_EQ(a->transport->PeerCommandLevels(), (std::map<NodeId, uint32_t>{{b->id(), 0u}}));
}

TEST(GrpcTransportTest, StalledPeerFillsItsQueueWithoutBlockingSendOrOthers) {
  StalledRaftService stalled;
  GrpcTransportOptions o = TestOptions(NodeId(1));
  o.queue_max_messages = 64;
  auto stalled_server = LoopbackServer::Start({&stalled}, o);
  ASSERT_TRUE(stalled_server.ok());
  auto a = TestNode::Start(o);
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  const NodeId slow(3);
  a->transport->UpdatePeers({{b->id(), b->address()}, {slow, (*stalled_server)->address()}});

  // 64 KiB messages: the stalled stream's flow-control window fills after a few.
  uint64_t seq = 0;
  ASSERT_TRUE(Eventually([&] {
    a->transport->Send({Append(a->id(), b->id(), seq, 1, 16), Append(a->id(), slow, seq, 1, 64 << 10)});
    ++seq;
    return a->transport->stats().dropped_queue_full > 0;
  }));
  EXPECT_EQ(stalled.streams(), 1);
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == seq; }));
  // Reported (asynchronously) even though the sender is stuck in a write; once per episode.
  ASSERT_TRUE(Eventually([&] { return a->unreachable.Count(slow) == 1; }));
  for (int i = 0; i < 100; ++i) a->transport->Send({Append(a->id(), slow, seq++, 1, 64 << 10)});
  EXPECT_EQ(a->transport->stats().unreachable_reports, 1u);

  // Shutdown cancels the stuck write.
  const auto start = std::chrono::steady_clock::now();
  a->transport->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  a->transport->Shutdown();                             // idempotent
  a->transport->Send({Append(a->id(), b->id(), seq)});  // ignored after shutdown
}

TEST(GrpcTransportTest, SilentPeerIsDetectedAndReported) {
  SilentListener silent;
  GrpcTransportOptions o = TestOptions(NodeId(1));
  o.connect_timeout = 300ms;
  o.keepalive_time = 300ms;
  o.keepalive_timeout = 300ms;
  auto a = TestNode::Start(o);
  ASSERT_TRUE(a);
  a->transport->UpdatePeers({{NodeId(2), silent.address()}});
  uint64_t seq = 0;
  ASSERT_TRUE(Eventually([&] {
    a->transport->Send({Append(a->id(), NodeId(2), seq++)});
    return a->unreachable.Count(NodeId(2)) > 0;
  }));
}

TEST(GrpcTransportTest, KeepaliveDetectsAPeerThatStopsAnsweringMidStream) {
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(b);
  FreezableProxy proxy(b->server->port());
  GrpcTransportOptions o = TestOptions(NodeId(1));
  o.keepalive_time = 200ms;
  o.keepalive_timeout = 300ms;
  auto a = TestNode::Start(o);
  ASSERT_TRUE(a);
  a->transport->UpdatePeers({{b->id(), proxy.address()}});
  uint64_t seq = 0;
  ASSERT_TRUE(Eventually([&] {
    a->transport->Send({Append(a->id(), b->id(), seq++)});
    return b->inbox.size() > 0;
  }));

  proxy.Freeze();
  ASSERT_TRUE(Eventually([&] {
    a->transport->Send({Append(a->id(), b->id(), seq++)});
    return a->unreachable.Count(b->id()) == 1;
  }));
}

TEST(GrpcTransportTest, FrequentKeepalivePingsDoNotBreakIdleStreams) {
  // The server accepts pings this frequent (ConfigureServerBuilder). With gRPC's default server
  // policy an idle stream is broken by GOAWAY "too_many_pings" after ~3 s (the client sends at
  // most one ping a second; the third strike kills the connection), so this test has to idle
  // that long: the one deliberate wait in this file.
  GrpcTransportOptions o = TestOptions(NodeId(1));
  o.keepalive_time = 50ms;
  o.keepalive_timeout = 1000ms;
  auto a = TestNode::Start(o);
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  a->transport->UpdatePeers({{b->id(), b->address()}});
  a->transport->Send({Append(a->id(), b->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 1; }));
  std::this_thread::sleep_for(4s);
  a->transport->Send({Append(a->id(), b->id(), 1)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 2; }));
  EXPECT_EQ(a->transport->stats().stream_failures, 0u);
  EXPECT_EQ(a->unreachable.Count(b->id()), 0);
}

TEST(GrpcTransportTest, ShutdownWithFullQueueToDeadPeerReturnsPromptly) {
  GrpcTransportOptions o = TestOptions(NodeId(1));
  o.backoff_initial = 10s;  // the sender sits in a long backoff
  o.backoff_max = 10s;
  auto a = TestNode::Start(o);
  ASSERT_TRUE(a);
  a->transport->UpdatePeers({{NodeId(2), "127.0.0.1:" + std::to_string(ClosedPort())}});
  a->transport->Send({Append(a->id(), NodeId(2), 0)});
  ASSERT_TRUE(Eventually([&] { return a->unreachable.Count(NodeId(2)) == 1; }));
  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 5000; ++i) msgs.push_back(Append(a->id(), NodeId(2), i));
  a->transport->Send(std::move(msgs));
  EXPECT_GT(a->transport->stats().dropped_queue_full, 0u);

  const auto start = std::chrono::steady_clock::now();
  a.reset();  // the destructor shuts down
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(GrpcTransportTest, ShutdownEndsIncomingStreamsAndStopsDelivery) {
  auto a = TestNode::Start(TestOptions(NodeId(1)));
  auto b = TestNode::Start(TestOptions(NodeId(2)));
  ASSERT_TRUE(a && b);
  a->transport->UpdatePeers({{b->id(), b->address()}});
  a->transport->Send({Append(a->id(), b->id(), 0)});
  ASSERT_TRUE(Eventually([&] { return b->inbox.size() == 1; }));

  // b's transport goes first while its server still runs: the stream from a is cancelled and
  // nothing more is delivered; a sees the failure.
  b->transport->Shutdown();
  const size_t delivered = b->inbox.size();
  ASSERT_TRUE(Eventually([&] {
    a->transport->Send({Append(a->id(), b->id(), 1)});
    return a->unreachable.Count(b->id()) == 1;
  }));
  EXPECT_EQ(b->inbox.size(), delivered);
}

}  // namespace
}  // namespace dispotify::transport
