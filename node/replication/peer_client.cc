// PeerClient over gRPC (sync API for calls and streams, async API for the parallel health
// probes); the contract is in peer_client.h.

#include "node/replication/peer_client.h"

#include <grpcpp/alarm.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/sync_stream.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <deque>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "common/sha256.h"
#include "dispotify/v1/replication.grpc.pb.h"
#include "dispotify/v1/replication.pb.h"
#include "node/catalog/types.h"
#include "node/replication/blob_store.h"
#include "node/transport/grpc_transport.h"

namespace dispotify::replication {

using Clock = std::chrono::steady_clock;

namespace {

// A data message of ReplicateFile carries at most this many bytes (an upload's pieces are 256 KiB;
// a bigger piece is split so that no message nears gRPC's 4 MiB limit).
constexpr size_t kMaxDataMessage = 1024 * 1024;

Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE: return Status::InvalidArgument(std::move(msg));
    case grpc::StatusCode::NOT_FOUND: return Status::NotFound(std::move(msg));
    case grpc::StatusCode::ALREADY_EXISTS: return Status::AlreadyExists(std::move(msg));
    case grpc::StatusCode::DATA_LOSS: return Status::Corruption(std::move(msg));
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return Status::NoSpace(std::move(msg));
    case grpc::StatusCode::UNAVAILABLE: return Status::Unavailable(std::move(msg));
    case grpc::StatusCode::DEADLINE_EXCEEDED: return Status::Timeout(std::move(msg));
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::UNIMPLEMENTED: return Status::FailedPrecondition(std::move(msg));
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED: return Status::Aborted(std::move(msg));
    default: return Status::IoError(std::move(msg));
  }
}

bool Retryable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

int Millis(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<int64_t>(d.count(), 1, INT_MAX));
}

std::chrono::system_clock::time_point DeadlineIn(std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const PeerClientOptions& o) {
  grpc::ChannelArguments args;
  // Our retries (unary calls only) replace gRPC's, which would buffer streams for replay.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // A peer that comes back is reachable again within backoff_max.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, Millis(o.backoff_base));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, Millis(o.backoff_max));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, Millis(o.call_timeout));  // a connect attempt's deadline
  // Bulk file traffic gets its own connection, never shared with the Raft transport's.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  transport::ApplyPeerChannelDefaults(&args);
  return grpc::CreateCustomChannel(address, transport::MakePeerChannelCredentials(o.channel_credentials),
                                   args);
}

// Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a uniform pause in
// [0, min(max, base * 2^attempt)].
std::chrono::milliseconds FullJitter(const PeerClientOptions& o, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  int64_t cap = o.backoff_base.count();
  for (int i = 0; i < attempt && cap < o.backoff_max.count(); ++i) cap *= 2;
  cap = std::clamp<int64_t>(cap, 0, o.backoff_max.count());
  return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, cap)(rng));
}

// Cancels calls whose wait for the next message has lasted too long: the sync API has no
// per-message deadline, and a whole-stream deadline would cut long reads to slow consumers.
class Watchdog {
 public:
  class Guard {
   public:
    Guard(Watchdog* dog, grpc::ClientContext* ctx) : dog_(dog), ctx_(ctx) {}
    ~Guard() { Disarm(); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    // The call is waiting from now on; cancelled unless Disarm()ed within `timeout`.
    void Arm(std::chrono::milliseconds timeout) { dog_->Arm(this, Clock::now() + timeout); }
    void Disarm() { dog_->Disarm(this); }
    // True when the watchdog cancelled the call.
    bool fired() {
      std::lock_guard lk(dog_->mu_);
      return fired_;
    }

   private:
    friend class Watchdog;
    Watchdog* const dog_;
    grpc::ClientContext* const ctx_;
    bool fired_ = false;  // guarded by dog_->mu_
  };

  Watchdog() : thread_([this] { Run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void Arm(Guard* g, Clock::time_point deadline) {
    bool earlier;
    {
      std::lock_guard lk(mu_);
      armed_.erase({deadline_of_[g], g});
      deadline_of_[g] = deadline;
      armed_.insert({deadline, g});
      earlier = armed_.begin()->second == g;
    }
    if (earlier) cv_.notify_all();
  }
  void Disarm(Guard* g) {
    std::lock_guard lk(mu_);
    auto it = deadline_of_.find(g);
    if (it == deadline_of_.end()) return;
    armed_.erase({it->second, g});
    deadline_of_.erase(it);
  }
  void Run() {
    std::unique_lock lk(mu_);
    while (!stop_) {
      if (armed_.empty()) {
        cv_.wait(lk);
        continue;
      }
      const auto [deadline, g] = *armed_.begin();
      if (Clock::now() < deadline) {
        cv_.wait_until(lk, deadline);
        continue;
      }
      armed_.erase(armed_.begin());
      deadline_of_.erase(g);
      g->fired_ = true;
      g->ctx_->TryCancel();  // thread-safe; the Guard (and its call) outlive this: Disarm waits on mu_
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::pair<Clock::time_point, Guard*>> armed_;
  std::map<Guard*, Clock::time_point> deadline_of_;
  bool stop_ = false;
  std::thread thread_;  // last
};

// --- Local replica writer -------------------------------------------------------------------

class LocalReplicaWriter final : public ReplicaWriter {
 public:
  LocalReplicaWriter(NodeId node, std::unique_ptr<BlobWriter> writer)
      : node_(node), writer_(std::move(writer)) {}
  ~LocalReplicaWriter() override { Abort(); }

  NodeId node() const override { return node_; }
  Status Append(std::shared_ptr<const std::string> piece) override {
    if (piece == nullptr) return Status::Ok();
    return writer_->Append(*piece);
  }
  void Seal(uint64_t size, const std::string& sha256) override { result_ = writer_->Commit(size, sha256); }
  std::optional<Status> WaitSealed(Clock::time_point /*deadline*/) override {
    if (!result_) return Status::FailedPrecondition("replica on this node: WaitSealed before Seal");
    return *result_;
  }
  void Abort() override { writer_->Abort(); }

 private:
  const NodeId node_;
  const std::unique_ptr<BlobWriter> writer_;
  std::optional<Status> result_;
};

}  // namespace

Status ReplicaWriter::Finish(uint64_t size, const std::string& sha256) {
  Seal(size, sha256);
  for (;;) {
    // Answers by finish_timeout after the seal at the latest.
    if (auto s = WaitSealed(Clock::now() + std::chrono::hours(1))) return *s;
  }
}

// --- Peers ------------------------------------------------------------------------------------

struct PeerClient::Impl {
  struct Peer {
    Peer(NodeId peer_id, std::string peer_address, const PeerClientOptions& o)
        : id(peer_id),
          address(std::move(peer_address)),
          channel(MakeChannel(address, o)),
          stub(v1::Replication::NewStub(channel)) {}
    const NodeId id;
    const std::string address;
    const std::shared_ptr<grpc::Channel> channel;
    const std::unique_ptr<v1::Replication::Stub> stub;  // thread-safe
    // Guarded by Impl::mu.
    PeerStats stats;
    std::optional<Clock::time_point> first_probe;
    bool probing = false;
  };

  struct HealthCall {
    std::shared_ptr<Peer> peer;
    grpc::ClientContext ctx;
    v1::HealthResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::HealthResponse>> rpc;
  };

  Impl(PeerClientOptions o, BlobStore* store) : options(std::move(o)), local(store) {}

  std::shared_ptr<Peer> Find(NodeId node) const {
    std::lock_guard lk(mu);
    auto it = peers.find(node);
    return it == peers.end() ? nullptr : it->second;
  }
  Status NoAddress(NodeId node) const {
    return Status::Unavailable("no address for node " + std::to_string(node.value()));
  }

  bool AliveLocked(const Peer& p, Clock::time_point now) const {
    if (!p.stats.ever_answered) {
      // Grace until the first answer, bounded by health_ttl from the first probe.
      return !p.first_probe || now - *p.first_probe <= options.health_ttl;
    }
    return now - p.stats.last_answer <= options.health_ttl;
  }

  // Runs `call` (one attempt, given a fresh context with its deadline) up to max_attempts times
  // while it fails with UNAVAILABLE or DEADLINE_EXCEEDED, pausing with full jitter in between.
  Status Unary(std::string_view what, std::chrono::milliseconds timeout,
               const std::function<grpc::Status(grpc::ClientContext*)>& call) const {
    grpc::Status st;
    const int attempts = std::max(1, options.max_attempts);
    for (int attempt = 0; attempt < attempts; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(FullJitter(options, attempt - 1));
      grpc::ClientContext ctx;
      ctx.set_deadline(DeadlineIn(timeout));
      st = call(&ctx);
      if (st.ok() || !Retryable(st)) break;
    }
    return FromGrpc(st, what);
  }

  Status RemoteRead(v1::Replication::Stub* stub, const std::string& where, const std::string& file_id,
                    uint64_t offset, uint64_t length, const std::function<Status(const BlobInfo&)>& on_info,
                    const std::function<Status(std::string_view)>& sink);

  void RunHealth();
  void StartProbe(grpc::CompletionQueue* cq, std::map<HealthCall*, std::unique_ptr<HealthCall>>* inflight,
                  std::shared_ptr<Peer> peer);
  void EndProbe(HealthCall* call);

  const PeerClientOptions options;
  BlobStore* const local;
  Watchdog watchdog;

  mutable std::mutex mu;  // guards everything below, and the Peers' stats
  std::map<NodeId, std::shared_ptr<Peer>> peers;
  std::optional<std::string> self_address;
  // Health thread.
  std::thread health;
  bool stopping = false;
  grpc::CompletionQueue* health_cq = nullptr;  // while the thread runs, for Stop's wake-up alarm
  grpc::Alarm* wake = nullptr;
};

// --- Remote replica writer ----------------------------------------------------------------------
//
// The upload thread queues pieces; this writer's own thread drains them into the ReplicateFile
// stream. The upload thread never waits on the network for longer than stall_timeout (Append) or
// finish_timeout (Finish): past those it cancels the stream, which also unblocks the writer
// thread.

namespace {

class RemoteReplicaWriter final : public ReplicaWriter {
 public:
  RemoteReplicaWriter(NodeId node, std::shared_ptr<void> keep_alive, v1::Replication::Stub* stub,
                      v1::ReplicateFileHeader header, PeerClientOptions options)
      : node_(node), keep_alive_(std::move(keep_alive)), stub_(stub), options_(std::move(options)) {
    ctx_.set_wait_for_ready(false);  // a refused connection fails at once
    thread_ = std::thread([this, h = std::move(header)]() mutable { Run(std::move(h)); });
  }
  ~RemoteReplicaWriter() override { Abort(); }

  NodeId node() const override { return node_; }

  Status Append(std::shared_ptr<const std::string> piece) override {
    std::unique_lock lk(mu_);
    if (!error_.ok()) return error_;
    if (finishing_ || aborted_) return Status::FailedPrecondition(Who() + ": Append after Finish or Abort");
    if (piece == nullptr || piece->empty()) return Status::Ok();
    if (!room_cv_.wait_for(lk, options_.stall_timeout, [this] {
          return !error_.ok() || queue_.size() < std::max<size_t>(1, options_.writer_queue_pieces);
        })) {
      error_ = Status::Timeout(Who() + ": stalled (queue full for " +
                               std::to_string(options_.stall_timeout.count()) + " ms); dropped");
      ctx_.TryCancel();
      return error_;
    }
    if (!error_.ok()) return error_;
    queue_.push_back(std::move(piece));
    lk.unlock();
    work_cv_.notify_one();
    return Status::Ok();
  }

  void Seal(uint64_t size, const std::string& sha256) override {
    std::lock_guard lk(mu_);
    if (finishing_ || aborted_) {
      if (error_.ok()) error_ = Status::FailedPrecondition(Who() + ": Seal after Seal or Abort");
      return;
    }
    finishing_ = true;
    sealed_at_ = Clock::now();
    if (error_.ok()) {
      trailer_.set_size(size);
      trailer_.set_sha256(sha256);
      work_cv_.notify_one();
    }
  }

  std::optional<Status> WaitSealed(Clock::time_point deadline) override {
    {
      std::unique_lock lk(mu_);
      if (!finishing_) return Status::FailedPrecondition(Who() + ": WaitSealed before Seal");
      const Clock::time_point give_up = sealed_at_ + options_.finish_timeout;
      if (error_.ok() && !done_cv_.wait_until(lk, std::min(deadline, give_up), [this] { return done_; })) {
        if (Clock::now() < give_up) return std::nullopt;
        error_ = Status::Timeout(Who() + ": no answer within " +
                                 std::to_string(options_.finish_timeout.count()) + " ms");
      }
      if (!error_.ok()) ctx_.TryCancel();
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard lk(mu_);
    return error_;
  }

  void Abort() override {
    {
      std::lock_guard lk(mu_);
      if (finishing_ && !thread_.joinable()) return;  // Finish is over
      if (!finishing_) {
        aborted_ = true;
        if (error_.ok()) error_ = Status::Aborted(Who() + ": aborted");
      }
      ctx_.TryCancel();
    }
    work_cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::string Who() const { return "replica of node " + std::to_string(node_.value()); }

  void Run(v1::ReplicateFileHeader header) {
    v1::ReplicateFileResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::ReplicateFileChunk>> stream =
        stub_->ReplicateFile(&ctx_, &response);
    v1::ReplicateFileChunk msg;
    *msg.mutable_header() = std::move(header);
    bool ok = stream->Write(msg);
    bool trailer_sent = false;
    bool cancel = false;
    while (ok) {
      std::shared_ptr<const std::string> piece;
      {
        std::unique_lock lk(mu_);
        work_cv_.wait(lk, [this] { return !queue_.empty() || finishing_ || !error_.ok(); });
        if (!error_.ok()) {  // aborted or stalled
          cancel = true;
          break;
        }
        if (!queue_.empty()) {
          piece = std::move(queue_.front());
          queue_.pop_front();
        } else {
          msg.Clear();
          *msg.mutable_trailer() = trailer_;
        }
      }
      room_cv_.notify_one();
      if (piece == nullptr) {
        ok = stream->Write(msg, grpc::WriteOptions().set_last_message());
        trailer_sent = true;
        break;
      }
      for (size_t at = 0; ok && at < piece->size(); at += kMaxDataMessage) {
        msg.set_data(piece->data() + at, std::min(kMaxDataMessage, piece->size() - at));
        ok = stream->Write(msg);
      }
    }
    // Cancel rather than half-close a stream we give up on: the receiver may be stalled. (After a
    // failed Write the call is over already; Finish says why.)
    if (cancel) ctx_.TryCancel();
    const grpc::Status st = stream->Finish();
    std::lock_guard lk(mu_);
    if (error_.ok()) {
      if (!st.ok()) {
        error_ = FromGrpc(st, Who());
      } else if (!trailer_sent) {
        error_ = Status::Aborted(Who() + ": stream ended early");
      }
    }
    done_ = true;
    done_cv_.notify_all();
    room_cv_.notify_all();
  }

  const NodeId node_;
  const std::shared_ptr<void> keep_alive_;  // the peer entry owning stub_
  v1::Replication::Stub* const stub_;
  const PeerClientOptions options_;
  grpc::ClientContext ctx_;  // TryCancel is thread-safe

  std::mutex mu_;  // guards everything below
  std::condition_variable room_cv_, work_cv_, done_cv_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  v1::ReplicateFileTrailer trailer_;
  bool finishing_ = false;  // sealed
  Clock::time_point sealed_at_{};
  bool aborted_ = false;
  bool done_ = false;  // the stream is over; error_ says how
  Status error_;       // sticky
  std::thread thread_;
};

}  // namespace

// --- Remote read --------------------------------------------------------------------------------

Status PeerClient::Impl::RemoteRead(v1::Replication::Stub* stub, const std::string& where,
                                    const std::string& file_id, uint64_t offset, uint64_t length,
                                    const std::function<Status(const BlobInfo&)>& on_info,
                                    const std::function<Status(std::string_view)>& sink) {
  const bool full = offset == 0 && length == 0;
  const std::string what = "ReadFile " + file_id + " from " + where;
  v1::ReadFileRequest request;
  request.set_file_id(file_id);
  request.set_offset(offset);
  request.set_length(length);
  request.set_cluster_id(options.cluster_id);
  grpc::Status st;
  const int attempts = std::max(1, options.max_attempts);
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(FullJitter(options, attempt - 1));
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(false);
    Watchdog::Guard guard(&watchdog, &ctx);
    std::unique_ptr<grpc::ClientReader<v1::ReadFileChunk>> reader = stub->ReadFile(&ctx, request);
    // A full read is checked here too (the server checked its disk; this checks the way), and
    // its last piece is held back until the check passes, as BlobReader does.
    Sha256 hasher;
    uint64_t received = 0;
    std::string held;
    bool have_held = false;
    std::optional<BlobInfo> info;
    Status local_error;
    v1::ReadFileChunk chunk;
    guard.Arm(options.call_timeout);
    while (reader->Read(&chunk)) {
      guard.Disarm();
      if (!info) {
        info = BlobInfo{chunk.size(), chunk.sha256()};
        local_error = on_info(*info);
      }
      if (local_error.ok() && !chunk.data().empty()) {
        received += chunk.data().size();
        if (full) {
          hasher.Update(chunk.data());
          if (have_held) local_error = sink(held);
          held.swap(*chunk.mutable_data());
          have_held = true;
        } else {
          local_error = sink(chunk.data());
        }
      }
      if (!local_error.ok()) {
        ctx.TryCancel();
        (void)reader->Finish();
        return local_error;
      }
      guard.Arm(options.stall_timeout);
    }
    guard.Disarm();
    st = reader->Finish();
    if (st.ok()) {
      if (!info) return Status::IoError(what + ": the stream ended without the blob's size and SHA-256");
      if (full && (received != info->size || hasher.FinalHex() != Lower(info->sha256))) {
        return Status::Corruption(what + ": received " + std::to_string(received) +
                                  " bytes that do not match the blob's size and SHA-256");
      }
      if (have_held) return sink(held);
      return Status::Ok();
    }
    if (guard.fired()) st = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no data within the timeout");
    // Retried only while the caller has seen nothing (on_info, hence no byte either).
    if (info || !Retryable(st)) break;
  }
  return FromGrpc(st, what);
}

// --- Health -------------------------------------------------------------------------------------

void PeerClient::Impl::StartProbe(grpc::CompletionQueue* cq,
                                  std::map<HealthCall*, std::unique_ptr<HealthCall>>* inflight,
                                  std::shared_ptr<Peer> peer) {
  auto call = std::make_unique<HealthCall>();
  call->peer = std::move(peer);
  call->ctx.set_deadline(DeadlineIn(std::min(options.call_timeout, options.health_ttl)));
  v1::HealthRequest request;
  request.set_cluster_id(options.cluster_id);
  call->rpc = call->peer->stub->AsyncHealth(&call->ctx, request, cq);
  HealthCall* tag = call.get();
  call->rpc->Finish(&call->response, &call->status, tag);
  inflight->emplace(tag, std::move(call));
}

void PeerClient::Impl::EndProbe(HealthCall* call) {
  Peer& p = *call->peer;
  std::lock_guard lk(mu);
  p.probing = false;
  if (!call->status.ok()) {
    p.stats.last_error = FromGrpc(call->status, "Health").ToString();
    return;
  }
  const v1::HealthResponse& r = call->response;
  if (r.node_id() != p.id.value() || r.cluster_id() != options.cluster_id) {
    p.stats.last_error = "Health: " + p.address + " is node " + std::to_string(r.node_id()) +
                         " of cluster '" + r.cluster_id() + "'";
    return;
  }
  p.stats.ever_answered = true;
  p.stats.last_answer = Clock::now();
  p.stats.files = r.files();
  p.stats.bytes = r.bytes();
  p.stats.free_bytes = r.free_bytes();
  p.stats.total_bytes = r.total_bytes();
  p.stats.applied_index = r.applied_index();
  p.stats.last_error.clear();
}

void PeerClient::Impl::RunHealth() {
  grpc::CompletionQueue cq;
  grpc::Alarm alarm;  // Stop() sets it (tag nullptr) to wake this thread at once
  {
    std::lock_guard lk(mu);
    if (stopping) return;
    health_cq = &cq;
    wake = &alarm;
  }
  std::map<HealthCall*, std::unique_ptr<HealthCall>> inflight;
  Clock::time_point next_round = Clock::now();
  for (;;) {
    if (Clock::now() >= next_round) {
      std::vector<std::shared_ptr<Peer>> due;
      {
        std::lock_guard lk(mu);
        if (stopping) break;
        const Clock::time_point now = Clock::now();
        for (auto& [id, p] : peers) {
          if (p->probing) continue;  // a slow peer's previous probe: it delays nobody else
          p->probing = true;
          if (!p->first_probe) p->first_probe = now;
          due.push_back(p);
        }
      }
      for (auto& p : due) StartProbe(&cq, &inflight, std::move(p));
      next_round = Clock::now() + options.health_interval;
    }
    void* tag = nullptr;
    bool ok = false;
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_round - Clock::now());
    const grpc::CompletionQueue::NextStatus ns =
        cq.AsyncNext(&tag, &ok, DeadlineIn(std::max(wait, std::chrono::milliseconds(0))));
    if (ns == grpc::CompletionQueue::SHUTDOWN) break;
    if (ns != grpc::CompletionQueue::GOT_EVENT) continue;
    if (tag == nullptr) {
      std::lock_guard lk(mu);
      if (stopping) break;
      continue;
    }
    auto it = inflight.find(static_cast<HealthCall*>(tag));
    if (it != inflight.end()) {
      EndProbe(it->second.get());
      inflight.erase(it);
    }
  }
  {
    std::lock_guard lk(mu);
    health_cq = nullptr;
    wake = nullptr;
    for (auto& [call, owned] : inflight) call->ctx.TryCancel();
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
    auto it = inflight.find(static_cast<HealthCall*>(tag));
    if (it != inflight.end()) {
      EndProbe(it->second.get());
      inflight.erase(it);
    }
  }
}

// --- PeerClient ---------------------------------------------------------------------------------

PeerClient::PeerClient(PeerClientOptions options, BlobStore* local)
    : impl_(std::make_unique<Impl>(std::move(options), local)) {}

PeerClient::~PeerClient() {
  Stop();
}

void PeerClient::SetPeers(const std::map<NodeId, std::string>& addresses) {
  std::lock_guard lk(impl_->mu);
  std::map<NodeId, std::shared_ptr<Impl::Peer>> next;
  impl_->self_address.reset();
  for (const auto& [id, address] : addresses) {
    if (id == kNoNode) continue;
    if (id == impl_->options.self) {
      impl_->self_address = address;
      continue;
    }
    auto it = impl_->peers.find(id);
    if (it != impl_->peers.end() && it->second->address == address) {
      next.emplace(id, it->second);
    } else {
      next.emplace(id, std::make_shared<Impl::Peer>(id, address, impl_->options));
    }
  }
  impl_->peers.swap(next);
}

std::optional<std::string> PeerClient::Address(NodeId node) const {
  std::lock_guard lk(impl_->mu);
  if (node == impl_->options.self) return impl_->self_address;
  auto it = impl_->peers.find(node);
  if (it == impl_->peers.end()) return std::nullopt;
  return it->second->address;
}

void PeerClient::Start() {
  std::lock_guard lk(impl_->mu);
  if (impl_->health.joinable()) return;
  impl_->stopping = false;
  impl_->health = std::thread([impl = impl_.get()] { impl->RunHealth(); });
}

void PeerClient::Stop() {
  std::thread health;
  {
    std::lock_guard lk(impl_->mu);
    if (!impl_->health.joinable()) return;
    impl_->stopping = true;
    if (impl_->health_cq != nullptr) {
      impl_->wake->Set(impl_->health_cq, std::chrono::system_clock::now(), nullptr);
    }
    health = std::move(impl_->health);
  }
  health.join();
}

bool PeerClient::IsAlive(NodeId node) const {
  if (node == impl_->options.self) return true;
  std::lock_guard lk(impl_->mu);
  auto it = impl_->peers.find(node);
  return it != impl_->peers.end() && impl_->AliveLocked(*it->second, Clock::now());
}

std::chrono::milliseconds PeerClient::DownFor(NodeId node) const {
  std::lock_guard lk(impl_->mu);
  auto it = impl_->peers.find(node);
  const Clock::time_point now = Clock::now();
  if (node == impl_->options.self || it == impl_->peers.end() || impl_->AliveLocked(*it->second, now))
    return std::chrono::milliseconds(0);
  const Impl::Peer& p = *it->second;
  const Clock::time_point since = p.stats.ever_answered ? p.stats.last_answer : p.first_probe.value_or(now);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - since);
}

std::map<NodeId, PeerStats> PeerClient::Peers() const {
  std::lock_guard lk(impl_->mu);
  std::map<NodeId, PeerStats> out;
  const Clock::time_point now = Clock::now();
  for (const auto& [id, p] : impl_->peers) {
    PeerStats s = p->stats;
    s.alive = impl_->AliveLocked(*p, now);
    out.emplace(id, std::move(s));
  }
  return out;
}

Result<std::unique_ptr<ReplicaWriter>> PeerClient::OpenWriter(NodeId node, const std::string& file_id,
                                                              const WriteExpectations& expect) {
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file id");
  if (expect.sha256 && !IsSha256Hex(*expect.sha256))
    return Status::InvalidArgument("expected SHA-256 is not 64 hex digits");
  if (node == impl_->options.self) {
    BlobWriteOptions o;
    o.expected_size = expect.size;
    o.expected_sha256 = expect.sha256;
    o.overwrite = expect.overwrite;
    o.fence_name = expect.fence_name;
    o.fence_token = expect.fence_token;
    auto w = impl_->local->Create(file_id, std::move(o));
    if (!w.ok()) return w.status();
    return std::unique_ptr<ReplicaWriter>(std::make_unique<LocalReplicaWriter>(node, std::move(w).value()));
  }
  std::shared_ptr<Impl::Peer> peer = impl_->Find(node);
  if (peer == nullptr) return impl_->NoAddress(node);
  v1::ReplicateFileHeader header;
  header.set_file_id(file_id);
  header.set_has_expected_size(expect.size.has_value());
  header.set_expected_size(expect.size.value_or(0));
  header.set_expected_sha256(expect.sha256.value_or(""));
  header.set_overwrite(expect.overwrite);
  header.set_fence_name(expect.fence_name);
  header.set_fence_token(expect.fence_token);
  header.set_sender_id(impl_->options.self.value());
  header.set_cluster_id(impl_->options.cluster_id);
  v1::Replication::Stub* stub = peer->stub.get();
  return std::unique_ptr<ReplicaWriter>(
      std::make_unique<RemoteReplicaWriter>(node, std::move(peer), stub, std::move(header), impl_->options));
}

Status PeerClient::ReadFile(NodeId node, const std::string& file_id, uint64_t offset, uint64_t length,
                            const std::function<Status(const BlobInfo&)>& on_info,
                            const std::function<Status(std::string_view)>& sink) {
  if (node == impl_->options.self)
    return local::ReadBlob(*impl_->local, file_id, offset, length, on_info, sink);
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file id");
  std::shared_ptr<Impl::Peer> peer = impl_->Find(node);
  if (peer == nullptr) return impl_->NoAddress(node);
  return impl_->RemoteRead(peer->stub.get(), "node " + std::to_string(node.value()), file_id, offset, length,
                           on_info, sink);
}

Status PeerClient::ReadFileFrom(const std::string& address, const std::string& file_id, uint64_t offset,
                                uint64_t length, const std::function<Status(const BlobInfo&)>& on_info,
                                const std::function<Status(std::string_view)>& sink) {
  if (!catalog::IsValidFileId(file_id)) return Status::InvalidArgument("invalid file id");
  std::shared_ptr<Impl::Peer> peer;
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->self_address == address) {
      return local::ReadBlob(*impl_->local, file_id, offset, length, on_info, sink);
    }
    for (const auto& [id, p] : impl_->peers) {
      if (p->address == address) peer = p;
    }
  }
  if (peer == nullptr) peer = std::make_shared<Impl::Peer>(kNoNode, address, impl_->options);  // one-off
  return impl_->RemoteRead(peer->stub.get(), address, file_id, offset, length, on_info, sink);
}

Status PeerClient::DeleteFile(NodeId node, const std::string& file_id, const std::string& sha256) {
  if (node == impl_->options.self) {
    auto existed = local::DeleteBlob(*impl_->local, file_id, sha256);
    return existed.ok() ? Status::Ok() : existed.status();
  }
  std::shared_ptr<Impl::Peer> peer = impl_->Find(node);
  if (peer == nullptr) return impl_->NoAddress(node);
  v1::DeleteFileRequest request;
  request.set_file_id(file_id);
  request.set_sha256(sha256);
  request.set_cluster_id(impl_->options.cluster_id);
  return impl_->Unary("DeleteFile " + file_id + " on node " + std::to_string(node.value()),
                      impl_->options.call_timeout, [&](grpc::ClientContext* ctx) {
                        v1::DeleteFileResponse response;
                        return peer->stub->DeleteFile(ctx, request, &response);
                      });
}

Result<BlobInfo> PeerClient::VerifyFile(NodeId node, const std::string& file_id) {
  if (node == impl_->options.self) return local::VerifyBlob(*impl_->local, file_id);
  std::shared_ptr<Impl::Peer> peer = impl_->Find(node);
  if (peer == nullptr) return impl_->NoAddress(node);
  v1::VerifyFileRequest request;
  request.set_file_id(file_id);
  request.set_cluster_id(impl_->options.cluster_id);
  v1::VerifyFileResponse response;
  Status s = impl_->Unary("VerifyFile " + file_id + " on node " + std::to_string(node.value()),
                          impl_->options.call_timeout, [&](grpc::ClientContext* ctx) {
                            response.Clear();
                            return peer->stub->VerifyFile(ctx, request, &response);
                          });
  if (!s.ok()) return s;
  return BlobInfo{response.size(), response.sha256()};
}

Status PeerClient::PullFile(NodeId target, NodeId source, const std::string& file_id, uint64_t size,
                            const std::string& sha256, bool overwrite) {
  if (target == source) {
    // Nothing to copy: the target's copy is either the wanted one or not.
    auto info = VerifyFile(target, file_id);
    if (!info.ok()) return info.status();
    if (info->size != size || Lower(info->sha256) != Lower(sha256)) {
      return Status::Corruption("PullFile: node " + std::to_string(target.value()) +
                                " holds another version of " + file_id);
    }
    return Status::Ok();
  }
  if (target == impl_->options.self) {
    return local::CopyInto(*impl_->local, file_id, size, sha256, overwrite,
                           [&](const std::function<Status(const BlobInfo&)>& on_info,
                               const std::function<Status(std::string_view)>& sink) {
                             return ReadFile(source, file_id, 0, 0, on_info, sink);
                           });
  }
  std::shared_ptr<Impl::Peer> peer = impl_->Find(target);
  if (peer == nullptr) return impl_->NoAddress(target);
  std::optional<std::string> source_address = Address(source);
  if (!source_address) return impl_->NoAddress(source);
  v1::PullFileRequest request;
  request.set_file_id(file_id);
  request.set_source_address(*source_address);
  request.set_expected_size(size);
  request.set_expected_sha256(sha256);
  request.set_overwrite(overwrite);
  request.set_cluster_id(impl_->options.cluster_id);
  return impl_->Unary("PullFile " + file_id + " to node " + std::to_string(target.value()),
                      impl_->options.finish_timeout, [&](grpc::ClientContext* ctx) {
                        v1::PullFileResponse response;
                        return peer->stub->PullFile(ctx, request, &response);
                      });
}

// --- Local operations -------------------------------------------------------------------------

namespace local {

Status ReadBlob(BlobStore& store, const std::string& file_id, uint64_t offset, uint64_t length,
                const std::function<Status(const BlobInfo&)>& on_info,
                const std::function<Status(std::string_view)>& sink) {
  auto opened = store.Open(file_id);
  if (!opened.ok()) return opened.status();
  BlobReader& reader = **opened;
  DISPOTIFY_RETURN_IF_ERROR(on_info(BlobInfo{reader.size(), reader.sha256()}));
  if (offset == 0 && length == 0) {
    auto buf = std::make_unique<char[]>(kReadPieceSize);
    for (;;) {
      auto n = reader.ReadNext(buf.get(), kReadPieceSize);
      if (!n.ok()) return n.status();
      if (*n == 0) return Status::Ok();
      DISPOTIFY_RETURN_IF_ERROR(sink(std::string_view(buf.get(), *n)));
    }
  }
  const uint64_t start = std::min(offset, reader.size());
  const uint64_t end = length == 0 || length > reader.size() - start ? reader.size() : start + length;
  for (uint64_t at = start; at < end;) {
    auto piece = reader.ReadAt(at, static_cast<size_t>(std::min<uint64_t>(kReadPieceSize, end - at)));
    if (!piece.ok()) return piece.status();
    if (piece->empty()) break;
    at += piece->size();
    DISPOTIFY_RETURN_IF_ERROR(sink(*piece));
  }
  return Status::Ok();
}

Result<bool> DeleteBlob(BlobStore& store, const std::string& file_id, const std::string& sha256) {
  if (!sha256.empty() && !IsSha256Hex(sha256)) return Status::InvalidArgument("SHA-256 is not 64 hex digits");
  if (!sha256.empty()) {
    auto opened = store.Open(file_id);
    if (!opened.ok()) {
      if (opened.status().code() == StatusCode::kNotFound) return false;
      if (opened.status().code() != StatusCode::kCorruption) return opened.status();
      DLOG_WARN << "deleting unreadable blob: " << opened.status().ToString();
    } else if ((*opened)->sha256() != Lower(sha256)) {
      return Status::FailedPrecondition("blob " + file_id + " holds SHA-256 " + (*opened)->sha256() +
                                        ", not " + Lower(sha256) + "; kept");
    }
  }
  Status s = store.Delete(file_id);
  if (s.code() == StatusCode::kNotFound) return false;
  if (!s.ok()) return s;
  return true;
}

Result<BlobInfo> VerifyBlob(BlobStore& store, const std::string& file_id) {
  auto opened = store.Open(file_id);
  if (!opened.ok()) return opened.status();
  DISPOTIFY_RETURN_IF_ERROR((*opened)->ReadAll([](std::string_view) { return Status::Ok(); }));
  return BlobInfo{(*opened)->size(), (*opened)->sha256()};
}

Status CopyInto(BlobStore& store, const std::string& file_id, uint64_t size, const std::string& sha256,
                bool overwrite,
                const std::function<Status(const std::function<Status(const BlobInfo&)>& on_info,
                                           const std::function<Status(std::string_view)>& sink)>& read) {
  if (!IsSha256Hex(sha256)) return Status::InvalidArgument("expected SHA-256 is not 64 hex digits");
  BlobWriteOptions options;
  options.expected_size = size;
  options.expected_sha256 = sha256;
  options.overwrite = overwrite;
  auto created = store.Create(file_id, std::move(options));
  if (!created.ok()) return created.status();
  BlobWriter& writer = **created;  // aborted by its destructor on every early return
  Status s = read(
      [&](const BlobInfo& info) {
        if (info.size != size || Lower(info.sha256) != Lower(sha256)) {
          return Status::Corruption("source holds " + file_id + " with " + std::to_string(info.size) +
                                    " bytes and SHA-256 " + info.sha256 + ", not the wanted version");
        }
        return Status::Ok();
      },
      [&](std::string_view piece) { return writer.Append(piece); });
  if (!s.ok()) {
    writer.Abort();
    return s;
  }
  return writer.Commit();
}

}  // namespace local

}  // namespace dispotify::replication
