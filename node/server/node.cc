#include "node/server/node.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>

#include "common/file_system.h"
#include "common/logging.h"
#include "node/kv/kv_state_machine.h"
#include "node/server/kv_service.h"
#include "node/server/metrics.h"
#include "node/server/raft_node.h"
#include "node/storage/identity.h"
#include "node/storage/log_store.h"
#include "node/storage/snapshot_store.h"
#include "node/storage/stable_store.h"
#include "node/transport/grpc_transport.h"

namespace dispotify::server {
namespace {

int StorageFailure(const std::string& what, const Status& st) {
  DLOG_ERROR << what << ": " << st.ToString();
  return kExitStorageError;
}

// The transport's handlers run before the Raft node exists (Open starts the peer senders);
// until then messages are simply dropped (Raft retransmits).
struct RaftRef {
  std::atomic<RaftNode*> node{nullptr};
};

}  // namespace

Node::Node(NodeConfig config) : config_(std::move(config)), fs_(&DefaultFileSystem()) {}

Node::~Node() {
  Shutdown();
}

int Node::metrics_port() const {
  return metrics_ ? metrics_->port() : 0;
}

int Node::Start() {
  LogLevel level = LogLevel::kInfo;
  if (ParseLogLevel(config_.log_level, &level)) SetLogLevel(level);
  const std::string& dir = config_.data_dir;

  if (config_.reset) {
    if (!fs_->Exists(dir)) {
      DLOG_INFO << "reset: " << dir << " does not exist, nothing to do";
      return kCompleted;
    }
    if (!storage::IsMarkedRemoved(*fs_, dir)) {
      DLOG_ERROR << "reset: refusing to wipe " << dir
                 << ": it is not marked as a removed member (delete it by hand if you mean it)";
      return kExitBadConfig;
    }
    Status st = storage::ResetDataDir(*fs_, dir);
    if (!st.ok()) return StorageFailure("reset: could not wipe " + dir, st);
    DLOG_INFO << "reset: wiped " << dir << "; start the node again (with --join) to add it back";
    return kCompleted;
  }

  if (Status st = fs_->CreateDirs(dir); !st.ok()) return StorageFailure("cannot create " + dir, st);
  auto identity = storage::LoadOrStampIdentity(*fs_, dir, config_.cluster_id, config_.node_id);
  if (!identity.ok()) {
    if (storage::IsMarkedRemoved(*fs_, dir)) {
      DLOG_ERROR << "node " << config_.node_id << " was removed from the cluster; refusing to start on "
                 << dir << " (" << identity.status().message()
                 << "). Run with --reset to wipe it, then --join.";
      return kExitRemoved;
    }
    if (identity.status().code() == StatusCode::kFailedPrecondition) {
      DLOG_ERROR << "refusing to start: " << identity.status().message();
      return kExitForeignDataDir;
    }
    return StorageFailure("cannot read the identity of " + dir, identity.status());
  }

  auto log = storage::OpenSegmentedLog(*fs_, dir + "/log");
  if (!log.ok()) return StorageFailure("cannot open the Raft log", log.status());
  log_ = std::move(log).value();
  auto stable = storage::OpenStableStore(*fs_, dir + "/state");
  if (!stable.ok()) return StorageFailure("cannot open the stable store", stable.status());
  stable_ = std::move(stable).value();
  auto snaps = storage::OpenSnapshotStore(*fs_, dir + "/snapshots");
  if (!snaps.ok()) return StorageFailure("cannot open the snapshot store", snaps.status());
  snapshots_ = std::move(snaps).value();
  kv_ = std::make_unique<kv::KvStateMachine>();

  auto metrics = Metrics::Start(config_.metrics_listen);
  if (!metrics.ok()) {
    DLOG_ERROR << metrics.status().message();
    return kExitBadConfig;
  }
  metrics_ = std::move(metrics).value();

  auto ref = std::make_shared<RaftRef>();
  transport::GrpcTransportOptions topts;
  topts.self = config_.node_id;
  topts.cluster_id = config_.cluster_id;
  transport_ = std::make_unique<transport::GrpcTransport>(
      topts,
      [ref](consensus::Message&& m) {
        if (RaftNode* n = ref->node.load(std::memory_order_acquire)) n->Step(std::move(m));
      },
      [ref](NodeId peer) {
        if (RaftNode* n = ref->node.load(std::memory_order_acquire)) n->ReportUnreachable(peer);
      });

  RaftNodeOptions ropts;
  ropts.id = config_.node_id;
  ropts.data_dir = dir;
  ropts.tick_ms = config_.tick_ms;
  ropts.election_ticks = config_.election_ticks;
  ropts.snapshot_entries = config_.snapshot_entries;
  ropts.join = config_.join;
  for (const auto& [id, addr] : config_.peers) {
    ropts.initial_conf.members[id] = consensus::Member{addr, true};
    if (id != config_.node_id) ropts.seed_addresses[id] = addr;
  }
  RaftNodeDeps deps;
  deps.fs = fs_;
  deps.log = log_.get();
  deps.stable = stable_.get();
  deps.snapshots = snapshots_.get();
  deps.transport = transport_.get();
  deps.state_machine = kv_.get();
  deps.observer = metrics_.get();
  auto raft = RaftNode::Open(ropts, deps);
  if (!raft.ok()) {
    if (raft.status().code() == StatusCode::kInvalidArgument) {
      DLOG_ERROR << "bad configuration: " << raft.status().message();
      return kExitBadConfig;
    }
    return StorageFailure("cannot recover the Raft state", raft.status());
  }
  raft_ = std::move(raft).value();
  ref->node.store(raft_.get(), std::memory_order_release);
  kv_service_ = std::make_unique<KvService>(raft_.get(), kv_.get());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &port_);
  transport::ConfigureServerBuilder(topts, &builder);
  builder.RegisterService(transport_->service());
  builder.RegisterService(kv_service_->service());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    DLOG_ERROR << "cannot listen on " << config_.listen;
    return kExitBadConfig;
  }

  raft_->Start([this](int code) {
    {
      std::lock_guard lock(mu_);
      loop_exit_code_ = code;
      stop_requested_ = true;
    }
    cv_.notify_all();
  });
  DLOG_INFO << "dispotify-node " << config_.node_id << " of cluster '" << config_.cluster_id
            << "' serving gRPC on " << config_.listen << " (port " << port_ << "), metrics on port "
            << metrics_->port() << ", data in " << dir;
  return kExitOk;
}

void Node::RequestStop() {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
}

int Node::Wait() {
  int code = kExitOk;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stop_requested_; });
    code = loop_exit_code_;
  }
  DLOG_INFO << "stopping"
            << (code == kExitOk ? "" : " after a fatal condition (exit code " + std::to_string(code) + ")");
  Shutdown();
  DLOG_INFO << "stopped";
  return code;
}

void Node::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (raft_) raft_->Stop();
  if (transport_) transport_->Shutdown();
  // Every KV call was answered when the loop stopped; what may still be open are peers' Raft
  // streams, which need no grace period.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  server_.reset();
}

}  // namespace dispotify::server
