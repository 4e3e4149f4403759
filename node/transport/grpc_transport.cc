#include "node/transport/grpc_transport.h"

#include <grpcpp/channel.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <climits>
#include <deque>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "common/assert.h"
#include "common/logging.h"
#include "common/tls/grpc_credentials.h"
#include "dispotify/v1/raft.grpc.pb.h"
#include "dispotify/v1/raft.pb.h"

namespace dispotify::transport {
namespace {

// Rate limit for repeated drops: log the 1st, 2nd, 4th, 8th... occurrence.
bool PowerOfTwo(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

int ClampInt(int64_t v) {
  return static_cast<int>(std::clamp<int64_t>(v, 0, INT_MAX));
}
int Millis(std::chrono::milliseconds d) {
  return ClampInt(d.count());
}

// Room for the envelope around the largest single message in a batch.
constexpr size_t kBatchOverhead = 4096;
// A sender's address longer than this (host:port) is ignored.
constexpr size_t kMaxAddressBytes = 255;

grpc::ChannelArguments PeerChannelArguments(const GrpcTransportOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(ClampInt(static_cast<int64_t>(o.max_message_bytes)));
  args.SetMaxReceiveMessageSize(ClampInt(static_cast<int64_t>(o.max_message_bytes)));
  // Our own stream retry replaces gRPC's (which would buffer the stream's messages for replay).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // gRPC's own reconnection follows our backoff, so that a peer that comes back is reachable
  // again within backoff_max rather than gRPC's default of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, Millis(o.backoff_initial));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, Millis(o.backoff_max));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, Millis(o.connect_timeout));  // a connect attempt's deadline
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(o.keepalive_time));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(o.keepalive_timeout));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  ApplyPeerChannelDefaults(&args);
  // One connection per transport and peer, never shared with another channel of this process
  // (in tests several nodes live in one process).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return args;
}

// Exponential backoff with jitter: initial, 2x initial, ... up to max, each scaled by a random
// factor in [1 - jitter, 1 + jitter].
class Backoff {
 public:
  Backoff(const GrpcTransportOptions& o, uint64_t seed)
      : initial_(o.backoff_initial),
        max_(o.backoff_max),
        jitter_(std::clamp(o.backoff_jitter, 0.0, 1.0)),
        next_(initial_),
        rng_(seed) {}
  void Reset() { next_ = initial_; }
  std::chrono::milliseconds Next() {
    std::uniform_real_distribution<double> dist(1.0 - jitter_, 1.0 + jitter_);
    auto d = std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(next_.count()) * dist(rng_)));
    next_ = std::min(next_ * 2, max_);
    return d;
  }

 private:
  std::chrono::milliseconds initial_, max_;
  double jitter_;
  std::chrono::milliseconds next_;
  std::mt19937_64 rng_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Per-peer state. The sender thread is the only one that writes to the stream; Send() and
// StopPeer() meet it under `mu`.

class GrpcTransport::Peer {
 public:
  Peer(NodeId peer_id, std::string peer_address) : id(peer_id), address(std::move(peer_address)) {}

  const NodeId id;
  const std::string address;
  std::thread thread;

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  struct Queued {
    consensus::Message msg;
    size_t bytes;
  };
  std::deque<Queued> queue;
  size_t queued_bytes = 0;
  bool stop = false;
  bool down = false;                      // in a failure episode, already reported
  bool overflowing = false;               // a message was dropped since the queue was last drained
  grpc::ClientContext* active = nullptr;  // the open stream's context, for StopPeer's cancel
};

// ---------------------------------------------------------------------------------------------
// Server side.

class GrpcTransport::RaftService final : public v1::Raft::Service {
 public:
  explicit RaftService(GrpcTransport* owner) : owner_(owner) {}

  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReader<v1::RaftBatch>* reader,
                      v1::StreamSummary* summary) override {
    const tls::PeerAuthorizer* authorizer = owner_->options_.authorizer;
    if (grpc::Status denied = tls::CheckPeer(authorizer, *ctx, tls::Service::kRaft); !denied.ok())
      return denied;
    // The node the certificate names: every message on this stream must be from it.
    std::optional<uint64_t> peer_node;
    if (authorizer) {
      auto identity = tls::PeerIdentityOf(*ctx->auth_context());
      if (!identity.ok() || !identity->node_id())
        return {grpc::StatusCode::UNAUTHENTICATED, "raft: no node identity in the client certificate"};
      peer_node = identity->node_id()->value();
    }
    auto checked_at = std::chrono::steady_clock::now();
    if (!owner_->BeginIncoming(ctx))
      return {grpc::StatusCode::UNAVAILABLE, "raft transport is shutting down"};
    v1::RaftBatch batch;
    uint64_t received = 0;
    std::string noted;  // the sender's address as last noted: every batch repeats it
    std::optional<uint32_t> noted_level;
    while (!owner_->stopping_.load(std::memory_order_acquire) && reader->Read(&batch)) {
      if (authorizer && std::chrono::steady_clock::now() - checked_at >= std::chrono::seconds(1)) {
        // Membership changes while a stream lasts: a node removed since it opened is cut off.
        checked_at = std::chrono::steady_clock::now();
        if (grpc::Status denied = authorizer->Check(*ctx, tls::Service::kRaft); !denied.ok()) {
          owner_->EndIncoming(ctx);
          return denied;
        }
      }
      if (peer_node) {
        const bool foreign = std::any_of(batch.messages().begin(), batch.messages().end(),
                                         [&](const v1::RaftMessage& m) { return m.from() != *peer_node; });
        if (foreign) {
          DLOG_WARN << "raft: closed the stream of node " << *peer_node
                    << ": it sent a message in the name of another node";
          owner_->EndIncoming(ctx);
          return {grpc::StatusCode::PERMISSION_DENIED, "raft: messages must be from the certificate's node"};
        }
      }
      // Before the messages: the answer to the first one may need the address. Only from a
      // sender that passes the fencing Deliver applies.
      if (batch.messages_size() > 0 && batch.messages(0).cluster_id() == owner_->options_.cluster_id &&
          batch.messages(0).to() == owner_->options_.self.value()) {
        const NodeId from(batch.messages(0).from());
        if (!batch.from_address().empty() && batch.from_address() != noted) {
          noted = batch.from_address();
          owner_->NoteSenderAddress(from, noted);
        }
        if (noted_level != batch.command_level()) {
          noted_level = batch.command_level();
          owner_->NoteCommandLevel(from, *noted_level);
        }
      }
      for (v1::RaftMessage& pm : *batch.mutable_messages()) {
        if (owner_->stopping_.load(std::memory_order_acquire)) break;
        owner_->Deliver(&pm);
        ++received;
      }
    }
    owner_->EndIncoming(ctx);
    summary->set_received(received);
    return grpc::Status::OK;
  }

 private:
  GrpcTransport* const owner_;
};

bool GrpcTransport::BeginIncoming(grpc::ServerContext* ctx) {
  std::lock_guard lk(incoming_mu_);
  if (stopping_incoming_) return false;
  incoming_.insert(ctx);
  return true;
}

void GrpcTransport::EndIncoming(grpc::ServerContext* ctx) {
  std::lock_guard lk(incoming_mu_);
  incoming_.erase(ctx);
  if (incoming_.empty()) incoming_cv_.notify_all();
}

void GrpcTransport::Deliver(v1::RaftMessage* pm) {
  if (pm->cluster_id() != options_.cluster_id) {
    uint64_t n = ++counters_.rejected_cluster;
    if (PowerOfTwo(n)) {
      DLOG_WARN << "dropped message from node " << pm->from() << " of cluster '" << pm->cluster_id()
                << "' (this is '" << options_.cluster_id << "'); " << n << " so far";
    }
    return;
  }
  if (pm->to() != options_.self.value()) {
    uint64_t n = ++counters_.rejected_target;
    if (PowerOfTwo(n)) {
      DLOG_WARN << "dropped message from node " << pm->from() << " addressed to node " << pm->to()
                << " (this is node " << options_.self << "); " << n << " so far";
    }
    return;
  }
  consensus::Message m;
  Status st = DecodeMessage(pm, options_.self, &m, options_.limits);
  if (!st.ok()) {
    uint64_t n = ++counters_.rejected_malformed;
    if (PowerOfTwo(n)) DLOG_WARN << "dropped " << st.ToString() << "; " << n << " so far";
    return;
  }
  ++counters_.received;
  handler_(std::move(m));
}

// ---------------------------------------------------------------------------------------------

GrpcTransport::GrpcTransport(GrpcTransportOptions options, Handler handler, UnreachableHandler on_unreachable)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      on_unreachable_(std::move(on_unreachable)),
      service_(std::make_unique<RaftService>(this)) {
  DISPOTIFY_CHECK(handler_ != nullptr, "GrpcTransport needs a message handler");
  notifier_ = std::thread([this] { RunNotifier(); });
}

GrpcTransport::~GrpcTransport() {
  Shutdown();
}

grpc::Service* GrpcTransport::service() {
  return service_.get();
}

void GrpcTransport::Send(std::vector<consensus::Message> msgs) {
  std::lock_guard lk(mu_);
  if (shut_down_) return;
  for (consensus::Message& m : msgs) {
    auto it = peers_.find(m.to);
    if (it == peers_.end() || m.to == options_.self) {
      ++counters_.dropped_unknown_peer;
      continue;
    }
    const size_t bytes = EstimateWireSize(m);
    if (bytes + kBatchOverhead > options_.max_message_bytes) {
      uint64_t n = ++counters_.dropped_too_large;
      DLOG_ERROR << "dropped a message of type " << static_cast<int>(m.type) << " of ~" << bytes
                 << " bytes to node " << m.to << ": above max_message_bytes; " << n << " so far";
      continue;
    }
    Peer& p = *it->second;
    {
      std::lock_guard plk(p.mu);
      if (p.queue.size() >= options_.queue_max_messages ||
          p.queued_bytes + bytes > options_.queue_max_bytes) {
        ++counters_.dropped_queue_full;
        if (!p.overflowing) {
          p.overflowing = true;
          if (!p.down) {
            DLOG_WARN << "send queue to node " << p.id << " is full; dropping messages";
            ReportUnreachable(p.id);
          }
        }
      } else {
        p.queued_bytes += bytes;
        p.queue.push_back({std::move(m), bytes});
      }
    }
    // Cheap when the sender is not waiting (no syscall without waiters).
    p.cv.notify_one();
  }
}

void GrpcTransport::UpdatePeers(const std::map<NodeId, std::string>& addresses) {
  std::vector<std::shared_ptr<Peer>> stopped;
  {
    std::lock_guard lk(mu_);
    if (shut_down_) return;
    members_ = addresses;
    std::erase_if(heard_, [this](const auto& kv) { return members_.contains(kv.first); });
    ReconcilePeersLocked(&stopped);
  }
  // Joined outside mu_ so that Send() never waits for a stopping sender.
  for (auto& p : stopped) StopPeer(p.get());
}

void GrpcTransport::NoteCommandLevel(NodeId from, uint32_t level) {
  if (from == options_.self || from == kNoNode) return;
  std::lock_guard lk(levels_mu_);
  levels_[from] = level;
}

std::map<NodeId, uint32_t> GrpcTransport::PeerCommandLevels() const {
  std::lock_guard lk(levels_mu_);
  return levels_;
}

void GrpcTransport::NoteSenderAddress(NodeId from, const std::string& address) {
  if (from == options_.self || from == kNoNode || address.size() > kMaxAddressBytes) return;
  std::vector<std::shared_ptr<Peer>> stopped;
  {
    std::lock_guard lk(mu_);
    if (shut_down_ || members_.contains(from)) return;
    auto [it, added] = heard_.emplace(from, address);
    if (!added && it->second == address) return;
    it->second = address;
    DLOG_INFO << "node " << from << " is not among the known peers; answering it at " << address
              << ", the address it sends";
    ReconcilePeersLocked(&stopped);
  }
  for (auto& p : stopped) StopPeer(p.get());
}

void GrpcTransport::ReconcilePeersLocked(std::vector<std::shared_ptr<Peer>>* stopped) {
  auto want = [this](NodeId id) -> const std::string* {
    if (auto it = members_.find(id); it != members_.end()) return &it->second;
    if (auto it = heard_.find(id); it != heard_.end()) return &it->second;
    return nullptr;
  };
  for (auto it = peers_.begin(); it != peers_.end();) {
    const std::string* address = want(it->first);
    if (address == nullptr || *address != it->second->address) {
      stopped->push_back(std::move(it->second));
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto* addresses : {&members_, &heard_}) {
    for (const auto& [id, address] : *addresses) {
      if (id == options_.self || id == kNoNode || peers_.contains(id)) continue;
      auto peer = std::make_shared<Peer>(id, address);
      peer->thread = std::thread([this, p = peer.get()] { RunPeer(p); });
      peers_.emplace(id, std::move(peer));
    }
  }
}

void GrpcTransport::StopPeer(Peer* p) {
  {
    std::lock_guard lk(p->mu);
    p->stop = true;
    if (p->active != nullptr) p->active->TryCancel();
  }
  p->cv.notify_all();
  if (p->thread.joinable()) p->thread.join();
}

void GrpcTransport::Shutdown() {
  std::map<NodeId, std::shared_ptr<Peer>> peers;
  {
    std::lock_guard lk(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    peers.swap(peers_);
  }
  // Cancel incoming streams first so that peers see us go, then the outgoing ones.
  stopping_.store(true, std::memory_order_release);
  {
    std::unique_lock lk(incoming_mu_);
    stopping_incoming_ = true;
    for (grpc::ServerContext* ctx : incoming_) ctx->TryCancel();
  }
  for (auto& [id, p] : peers) {
    std::lock_guard plk(p->mu);
    p->stop = true;
    if (p->active != nullptr) p->active->TryCancel();
    p->cv.notify_all();
  }
  for (auto& [id, p] : peers) StopPeer(p.get());
  {
    std::unique_lock lk(incoming_mu_);
    incoming_cv_.wait(lk, [this] { return incoming_.empty(); });
  }
  {
    std::lock_guard lk(notify_mu_);
    notify_stop_ = true;  // pending reports are moot now
  }
  notify_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
}

void GrpcTransport::ReportUnreachable(NodeId id) {
  {
    std::lock_guard lk(notify_mu_);
    if (notify_stop_) return;
    if (std::find(notify_queue_.begin(), notify_queue_.end(), id) != notify_queue_.end()) return;
    notify_queue_.push_back(id);
  }
  notify_cv_.notify_one();
}

void GrpcTransport::RunNotifier() {
  std::vector<NodeId> batch;
  for (;;) {
    {
      std::unique_lock lk(notify_mu_);
      notify_cv_.wait(lk, [this] { return notify_stop_ || !notify_queue_.empty(); });
      if (notify_stop_) return;
      batch.swap(notify_queue_);
    }
    for (NodeId id : batch) {
      ++counters_.unreachable_reports;
      if (on_unreachable_) on_unreachable_(id);
    }
    batch.clear();
  }
}

void GrpcTransport::RunPeer(Peer* p) {
  auto channel = grpc::CreateCustomChannel(
      p->address, MakePeerChannelCredentials(options_.channel_credentials), PeerChannelArguments(options_));
  auto stub = v1::Raft::NewStub(channel);
  Backoff backoff(options_, std::random_device{}() ^ (p->id.value() * 0x9E3779B97F4A7C15ull));

  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientWriter<v1::RaftBatch>> writer;
  v1::StreamSummary summary;
  v1::RaftBatch batch;
  std::vector<consensus::Message> pending;

  for (;;) {
    {
      std::unique_lock lk(p->mu);
      p->cv.wait(lk, [p] { return p->stop || !p->queue.empty(); });
      if (p->stop) break;
      size_t bytes = 0;
      while (!p->queue.empty() &&
             (pending.empty() || bytes + p->queue.front().bytes <= options_.max_batch_bytes)) {
        bytes += p->queue.front().bytes;
        p->queued_bytes -= p->queue.front().bytes;
        pending.push_back(std::move(p->queue.front().msg));
        p->queue.pop_front();
      }
      if (p->queue.empty()) p->overflowing = false;
      if (!writer && !pending.empty()) {
        ctx = std::make_unique<grpc::ClientContext>();
        ctx->set_wait_for_ready(false);          // a refused connection fails at once; we do the retrying
        ctx->set_initial_metadata_corked(true);  // headers leave with the first batch
        p->active = ctx.get();
      }
    }
    if (pending.empty()) continue;

    if (!writer) writer = stub->Stream(ctx.get(), &summary);
    batch.Clear();
    batch.set_from_address(options_.self_address);
    batch.set_command_level(options_.command_level);
    const size_t n = pending.size();
    for (consensus::Message& m : pending)
      EncodeMessage(std::move(m), options_.cluster_id, batch.add_messages());
    pending.clear();
    if (writer->Write(batch)) {
      counters_.sent += n;
      ++counters_.batches;
      backoff.Reset();
      std::lock_guard lk(p->mu);
      p->down = false;
      continue;
    }

    // The stream broke (or StopPeer cancelled it). Finish() returns why.
    grpc::Status status = writer->Finish();
    writer.reset();
    size_t dropped = n;
    bool stopping, first_failure;
    {
      std::lock_guard lk(p->mu);
      p->active = nullptr;
      stopping = p->stop;
      // What was queued before the failure is stale by the time we are back; Raft resends.
      dropped += p->queue.size();
      p->queue.clear();
      p->queued_bytes = 0;
      p->overflowing = false;
      first_failure = !p->down;
      p->down = true;
    }
    ctx.reset();
    if (stopping) break;
    counters_.dropped_on_failure += dropped;
    ++counters_.stream_failures;
    if (first_failure) {
      DLOG_WARN << "stream to node " << p->id << " at " << p->address
                << " failed: " << static_cast<int>(status.error_code()) << " " << status.error_message()
                << "; dropped " << dropped << " messages";
      ReportUnreachable(p->id);
    }
    std::unique_lock lk(p->mu);
    if (p->cv.wait_for(lk, backoff.Next(), [p] { return p->stop; })) break;
  }

  if (writer) {
    // Stopping with an open stream: cancel rather than half-close, as a peer may be stalled.
    ctx->TryCancel();
    (void)writer->Finish();
  }
  std::lock_guard lk(p->mu);
  p->active = nullptr;
}

GrpcTransport::Stats GrpcTransport::stats() const {
  Stats s;
  s.sent = counters_.sent.load();
  s.batches = counters_.batches.load();
  s.received = counters_.received.load();
  s.dropped_queue_full = counters_.dropped_queue_full.load();
  s.dropped_unknown_peer = counters_.dropped_unknown_peer.load();
  s.dropped_too_large = counters_.dropped_too_large.load();
  s.dropped_on_failure = counters_.dropped_on_failure.load();
  s.rejected_cluster = counters_.rejected_cluster.load();
  s.rejected_target = counters_.rejected_target.load();
  s.rejected_malformed = counters_.rejected_malformed.load();
  s.stream_failures = counters_.stream_failures.load();
  s.unreachable_reports = counters_.unreachable_reports.load();
  return s;
}

// ---------------------------------------------------------------------------------------------

void ApplyPeerChannelDefaults(grpc::ChannelArguments* args) {
  args->SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 500);
}

std::shared_ptr<grpc::ChannelCredentials> MakePeerChannelCredentials(
    const std::shared_ptr<grpc::ChannelCredentials>& configured) {
  return configured ? configured : grpc::InsecureChannelCredentials();
}

void ConfigureServerBuilder(const GrpcTransportOptions& options, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(ClampInt(static_cast<int64_t>(options.max_message_bytes)));
  builder->SetMaxSendMessageSize(ClampInt(static_cast<int64_t>(options.max_message_bytes)));
  // Accept the senders' keepalive pings however often they come (the default allows one per
  // five minutes on a call whose server sends nothing, which is every Raft stream).
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              Millis(options.keepalive_time) / 2);
  // And ping the senders, so that a stream from a vanished peer frees its server thread.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(options.keepalive_time));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(options.keepalive_timeout));
}

Result<std::unique_ptr<LoopbackServer>> LoopbackServer::Start(const std::vector<grpc::Service*>& services,
                                                              const GrpcTransportOptions& options, int port) {
  grpc::ServerBuilder builder;
  ConfigureServerBuilder(options, &builder);
  int selected = 0;
  const std::string address = "127.0.0.1:" + std::to_string(port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected);
  for (grpc::Service* s : services) builder.RegisterService(s);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || selected == 0) return Status::Unavailable("cannot listen on " + address);
  return std::unique_ptr<LoopbackServer>(new LoopbackServer(std::move(server), selected));
}

LoopbackServer::LoopbackServer(std::unique_ptr<grpc::Server> server, int port)
    : server_(std::move(server)), port_(port) {}

LoopbackServer::~LoopbackServer() {
  Shutdown();
}

void LoopbackServer::Shutdown() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now());  // cancels open calls at once
  server_->Wait();
  server_.reset();
}

}  // namespace dispotify::transport
