#pragma once
// Transport over gRPC: each node streams its Raft messages to each peer on one long-lived,
// one-way client stream (service dispotify.v1.Raft, rpc Stream); a reply is just a message on the
// replier's own stream back (etcd's design).
//
// Threads and ordering:
//   - Send() only appends to per-peer queues (bounded in messages and bytes; a full queue drops
//     the new message) and returns; it never touches the network.
//   - One sender thread per peer drains its queue into a RaftBatch of at most max_batch_bytes and
//     writes it on the stream without waiting for any reply (pipelining); while a write is in
//     flight the queue grows, so the next batch carries more (batching). Messages to one peer are
//     written in Send() order.
//   - When a stream breaks, the sender drops what was queued so far (Raft retransmits), reports
//     the peer unreachable once per failure episode, and reconnects after an exponential backoff
//     with jitter. A queue overflow is also reported (once, until the queue drains), so the core
//     stops pipelining to a peer that cannot keep up even while its sender is stuck in a write.
//   - The UnreachableHandler runs on one notifier thread of the transport: never on the caller
//     of Send(), never under a transport lock, never delayed by a stuck stream.
//   - Incoming streams are served by the node's grpc::Server threads, through service(); each
//     message is fenced (cluster_id, `to`), decoded, validated and handed to the Handler on that
//     server thread. The Handler may run on several threads at once (one per sending peer);
//     messages from one peer's stream arrive in order.
//   - Shutdown() cancels every stream (client and server side), joins the sender threads and
//     waits for in-flight Handler calls; after it returns neither handler is called again.
//     Never call it from a handler.
//
// Addresses: UpdatePeers gives the members' (the Raft core's configuration). Each batch also
// carries its sender's own address (options.self_address), used for a sender UpdatePeers does not
// list: a node started with no seed, waiting to be added, knows no member until the leader's log
// tells it, and must answer the leader before that.
//
// Dead and stalled peers: a refused connection fails fast; a connection attempt is bounded by
// connect_timeout; a stream whose peer stops answering HTTP/2 pings is closed after
// keepalive_time + keepalive_timeout. The server carrying service() must be built with
// ConfigureServerBuilder(): with gRPC's default ping policy it closes an idle Raft stream after
// about 3 s ("too_many_pings"), since the server never sends anything on it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "node/consensus/types.h"
#include "node/transport/proto_convert.h"
#include "node/transport/transport.h"

namespace grpc {
class ChannelArguments;
class ChannelCredentials;
class Server;
class ServerBuilder;
class ServerContext;
class Service;
}  // namespace grpc

namespace dispotify::tls {
class PeerAuthorizer;
}  // namespace dispotify::tls

namespace dispotify::transport {

struct GrpcTransportOptions {
  NodeId self;
  std::string cluster_id;
  // This node's Raft address as its peers reach it, sent with every batch so that a peer with no
  // address for this node can answer ("" = not sent).
  std::string self_address;
  // This node's catalog command level, sent with every batch (0 = not sent).
  uint32_t command_level = 0;

  // Per-peer send queue; beyond either bound new messages are dropped.
  size_t queue_max_messages = 4096;
  size_t queue_max_bytes = 64u << 20;
  // A batch holds messages up to this many (estimated) bytes; a bigger message goes alone.
  size_t max_batch_bytes = 4u << 20;
  // gRPC message size limit, both ways. Must exceed max_batch_bytes and the largest snapshot
  // chunk; a message that cannot fit is dropped at Send().
  size_t max_message_bytes = 64u << 20;

  // Pause before reconnecting after a failure: initial, doubled per consecutive failure up to
  // max, each randomised by +-jitter (a fraction).
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  double backoff_jitter = 0.2;
  // Bound on one connection attempt (TCP connect and HTTP/2 handshake).
  std::chrono::milliseconds connect_timeout{1000};
  // Liveness of an open stream: ping the peer after this long, give up if the ack takes longer
  // than keepalive_timeout.
  std::chrono::milliseconds keepalive_time{2000};
  std::chrono::milliseconds keepalive_timeout{2000};

  DecodeLimits limits;

  // Security (common/tls/grpc_credentials.h). Null credentials: plaintext (tests, insecure_grpc).
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
  // Null: every caller is served (plaintext). Otherwise an incoming stream must come from a
  // member (checked when it opens and again at most once a second while it lasts, so a removed
  // node's open stream is cut), and every message on it must be from the node its certificate
  // names: a member cannot speak for another.
  const tls::PeerAuthorizer* authorizer = nullptr;
};

class GrpcTransport final : public Transport {
 public:
  // Counters, for tests and (later) metrics.
  struct Stats {
    uint64_t sent = 0;                  // messages written on a stream
    uint64_t batches = 0;               // successful stream writes
    uint64_t received = 0;              // messages handed to the Handler
    uint64_t dropped_queue_full = 0;    // Send() found the peer's queue full
    uint64_t dropped_unknown_peer = 0;  // Send() to a node with no address (or to self)
    uint64_t dropped_too_large = 0;     // a single message beyond max_message_bytes
    uint64_t dropped_on_failure = 0;    // in flight or queued when a stream failed
    uint64_t rejected_cluster = 0;      // incoming with another cluster_id
    uint64_t rejected_target = 0;       // incoming addressed to another node
    uint64_t rejected_malformed = 0;    // incoming that failed validation
    uint64_t stream_failures = 0;       // broken or refused outgoing streams
    uint64_t unreachable_reports = 0;   // calls of the UnreachableHandler
  };

  GrpcTransport(GrpcTransportOptions options, Handler handler, UnreachableHandler on_unreachable);
  ~GrpcTransport() override;
  GrpcTransport(const GrpcTransport&) = delete;
  GrpcTransport& operator=(const GrpcTransport&) = delete;

  void Send(std::vector<consensus::Message> msgs) override;
  // Starts a sender for each new peer, stops the senders of removed peers (dropping what they
  // had queued) and restarts those whose address changed. The entry for self is ignored.
  void UpdatePeers(const std::map<NodeId, std::string>& addresses) override;
  void Shutdown() override;

  // The Raft service, to register on the node's grpc::Server. Teardown order: this transport's
  // Shutdown() (ends the incoming streams, which otherwise last until their peers go away), then
  // the server's Shutdown(), then destroy this transport.
  grpc::Service* service();

  Stats stats() const;
  // The command level each peer last sent (RaftBatch.command_level; 0: a version before levels).
  // A peer this node never heard from is absent.
  std::map<NodeId, uint32_t> PeerCommandLevels() const;
  const GrpcTransportOptions& options() const { return options_; }

 private:
  class Peer;
  class RaftService;

  void RunPeer(Peer* peer);
  void StopPeer(Peer* peer);
  void ReportUnreachable(NodeId id);  // queues a call of on_unreachable_ on the notifier
  void RunNotifier();

  // Server side, called by RaftService.
  bool BeginIncoming(grpc::ServerContext* ctx);  // false when shutting down
  void EndIncoming(grpc::ServerContext* ctx);
  void Deliver(dispotify::v1::RaftMessage* pm);
  // A sender's own address (RaftBatch.from_address), used while UpdatePeers lists no address
  // for it.
  void NoteSenderAddress(NodeId from, const std::string& address);
  void NoteCommandLevel(NodeId from, uint32_t level);
  // Starts and stops senders so that peers_ matches members_ plus heard_. Must hold mu_; the
  // stopped peers are for StopPeer once mu_ is released.
  void ReconcilePeersLocked(std::vector<std::shared_ptr<Peer>>* stopped);

  const GrpcTransportOptions options_;
  const Handler handler_;
  const UnreachableHandler on_unreachable_;
  std::unique_ptr<RaftService> service_;

  mutable std::mutex levels_mu_;
  std::map<NodeId, uint32_t> levels_;  // guarded by levels_mu_
  std::mutex mu_;                      // guards peers_, members_, heard_, shut_down_
  std::map<NodeId, std::shared_ptr<Peer>> peers_;
  std::map<NodeId, std::string> members_;  // the last UpdatePeers
  std::map<NodeId, std::string> heard_;    // senders' own addresses, for ids not in members_
  bool shut_down_ = false;

  std::mutex incoming_mu_;  // guards incoming_, stopping_incoming_
  std::condition_variable incoming_cv_;
  std::set<grpc::ServerContext*> incoming_;
  bool stopping_incoming_ = false;
  std::atomic<bool> stopping_{false};  // read per message by server threads

  struct Counters {
    std::atomic<uint64_t> sent{0}, batches{0}, received{0}, dropped_queue_full{0}, dropped_unknown_peer{0},
        dropped_too_large{0}, dropped_on_failure{0}, rejected_cluster{0}, rejected_target{0},
        rejected_malformed{0}, stream_failures{0}, unreachable_reports{0};
  };
  mutable Counters counters_;

  std::mutex notify_mu_;  // guards notify_queue_, notify_stop_
  std::condition_variable notify_cv_;
  std::vector<NodeId> notify_queue_;
  bool notify_stop_ = false;
  std::thread notifier_;  // last: started once everything above exists
};

// The credentials every node-to-node channel uses: `configured` (the node's mTLS credentials), or
// plaintext when it is null (unit tests, insecure_grpc).
std::shared_ptr<grpc::ChannelCredentials> MakePeerChannelCredentials(
    const std::shared_ptr<grpc::ChannelCredentials>& configured);

// Settings every node-to-node channel shares. A peer named by DNS (a StatefulSet pod, a Swarm
// task) comes back from a restart at a new address: the channel must look the name up again
// soon after its connection fails, not only after gRPC's default 30 s between lookups, which
// left a restarted member cut off from its leader (and not Ready) for that long.
void ApplyPeerChannelDefaults(grpc::ChannelArguments* args);

// Applies what a server carrying the Raft service needs: message size limit and acceptance of
// the transport's keepalive pings. The composition root calls it on its own builder.
void ConfigureServerBuilder(const GrpcTransportOptions& options, grpc::ServerBuilder* builder);

// A grpc::Server on 127.0.0.1 for tests and benchmarks (port 0: the kernel picks one).
class LoopbackServer {
 public:
  // `services` must outlive the server.
  static Result<std::unique_ptr<LoopbackServer>> Start(const std::vector<grpc::Service*>& services,
                                                       const GrpcTransportOptions& options, int port = 0);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Cancels open calls and stops; idempotent.
  void Shutdown();

 private:
  LoopbackServer(std::unique_ptr<grpc::Server> server, int port);
  std::unique_ptr<grpc::Server> server_;
  int port_;
};

}  // namespace dispotify::transport
