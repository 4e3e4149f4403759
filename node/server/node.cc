#include "node/server/node.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "common/audit/chain.h"
#include "common/file_system.h"
#include "common/logging.h"
#include "common/tls/grpc_credentials.h"
#include "common/tls/server_context.h"
#include "dispotify/v1/cluster.grpc.pb.h"
#include "node/api/auth_api.h"
#include "node/api/covers.h"
#include "node/api/files_service.h"
#include "node/api/http/http_server.h"
#include "node/api/rest_api.h"
#include "node/api/static_files.h"
#include "node/api/tags/tag_reader.h"
#include "node/audit/audit_log.h"
#include "node/audit/retention.h"
#include "node/auth/http_fetcher.h"
#include "node/auth/key_cache.h"
#include "node/auth/records.h"
#include "node/catalog/catalog_state_machine.h"
#include "node/catalog/commands.h"
#include "node/catalog/metadata_store.h"
#include "node/catalog/postgres_store.h"
#include "node/kv/kv_state_machine.h"
#include "node/replication/blob_store.h"
#include "node/replication/file_service.h"
#include "node/replication/peer_client.h"
#include "node/replication/repair.h"
#include "node/replication/replication_service.h"
#include "node/replication/scrubber.h"
#include "node/server/catalog_proposer.h"
#include "node/server/cluster_service.h"
#include "node/server/kv_service.h"
#include "node/server/metrics.h"
#include "node/server/raft_cluster_control.h"
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

Node::Node(NodeConfig config, std::string version)
    : config_(std::move(config)), version_(std::move(version)), fs_(&DefaultFileSystem()) {}

Node::~Node() {
  Shutdown();
}

int Node::http_port() const {
  return http_ ? http_->port() : 0;
}

int Node::metrics_port() const {
  return metrics_ ? metrics_->port() : 0;
}

CommandLevelGate Node::LevelGate() {
  return [this](const catalog::CommandBody& body) {
    const uint32_t needed = catalog::CommandLevelOf(body);
    if (needed <= 1) return Status::Ok();  // every version: no status to copy on the hot path
    return CheckMembersSpeak(needed, catalog::CommandName(body), raft_->status().conf, config_.node_id,
                             transport_->PeerCommandLevels());
  };
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

  // Before anything is opened: a node that would serve plaintext by mistake must not start at all.
  if (Status st = CheckGrpcSecurity(config_); !st.ok()) {
    DLOG_ERROR << "refusing to start: " << st.message();
    return kExitBadConfig;
  }
  if (Status st = fs_->CreateDirs(dir); !st.ok()) return StorageFailure("cannot create " + dir, st);
  auto identity = storage::LoadOrStampIdentity(*fs_, dir, config_.cluster_id, config_.node_id);
  if (!identity.ok() && config_.reset_removed && config_.join && storage::IsMarkedRemoved(*fs_, dir)) {
    DLOG_WARN << "node " << config_.node_id << " was removed from the cluster; reset_removed is set, so "
              << dir << " is wiped and the node joins again as a new incarnation";
    if (Status st = storage::ResetDataDir(*fs_, dir); !st.ok())
      return StorageFailure("cannot wipe " + dir, st);
    if (Status st = fs_->CreateDirs(dir); !st.ok()) return StorageFailure("cannot create " + dir, st);
    identity = storage::LoadOrStampIdentity(*fs_, dir, config_.cluster_id, config_.node_id);
  }
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
  node_uuid_ = identity->node_uuid;

  auto log = storage::OpenSegmentedLog(*fs_, dir + "/log");
  if (!log.ok()) return StorageFailure("cannot open the Raft log", log.status());
  log_ = std::move(log).value();
  auto stable = storage::OpenStableStore(*fs_, dir + "/state");
  if (!stable.ok()) return StorageFailure("cannot open the stable store", stable.status());
  stable_ = std::move(stable).value();
  auto snaps = storage::OpenSnapshotStore(*fs_, dir + "/snapshots");
  if (!snaps.ok()) return StorageFailure("cannot open the snapshot store", snaps.status());
  snapshots_ = std::move(snaps).value();
  consensus::StateMachine* state_machine = nullptr;
  if (config_.state_machine == "kv") {
    kv_ = std::make_unique<kv::KvStateMachine>();
    state_machine = kv_.get();
  } else {
    if (int code = OpenCatalog(); code != kExitOk) return code;
    state_machine = catalog_.get();
  }

  auto metrics = Metrics::Start(config_.metrics_listen, {version_, config_.cluster_id, config_.node_id},
                                config_.auth && config_.state_machine != "kv");
  if (!metrics.ok()) {
    DLOG_ERROR << metrics.status().message();
    return kExitBadConfig;
  }
  metrics_ = std::move(metrics).value();
  if (int code = StartSecurity(); code != kExitOk) return code;

  auto ref = std::make_shared<RaftRef>();
  transport::GrpcTransportOptions topts;
  topts.self = config_.node_id;
  topts.cluster_id = config_.cluster_id;
  // A node that waits to be added with no seed knows no member: it answers the leader here.
  topts.self_address = config_.advertise.empty() ? config_.listen : config_.advertise;
  topts.command_level = catalog::kCommandLevel;
  topts.channel_credentials = security_->ChannelCredentials();
  topts.authorizer = authorizer_.get();
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
  ropts.node_uuid = node_uuid_;
  ropts.data_dir = dir;
  ropts.tick_ms = config_.tick_ms;
  ropts.election_ticks = config_.election_ticks;
  ropts.snapshot_entries = config_.snapshot_entries;
  ropts.join = config_.join;
  if (config_.force_new_cluster_node == kNoNode || config_.force_new_cluster_node == config_.node_id)
    ropts.force_new_cluster = config_.force_new_cluster;
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
  deps.state_machine = state_machine;
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
  if (kv_) {
    kv_service_ = std::make_unique<KvService>(raft_.get(), kv_.get(), authorizer_.get());
    cluster_service_ = std::make_unique<ClusterService>(raft_.get(), nullptr, authorizer_.get());
  } else {
    cluster_service_ = std::make_unique<ClusterService>(
        raft_.get(),
        [gate = LevelGate()](std::string_view command) { return PrepareCatalogCommand(command, gate); },
        authorizer_.get());
    StartDataPlane();
    DataPlaneSources sources;
    sources.blobs = blobs_.get();
    sources.peers = peers_.get();
    sources.repair = repair_.get();
    sources.catalog = metadata_.get();
    RaftNode* raft_node = raft_.get();
    sources.is_leader = [raft_node] { return raft_node->status().role == consensus::Role::kLeader; };
    catalog::CatalogStateMachine* sm = catalog_.get();
    sources.replication_factor = [sm] { return sm->replication_factor(); };
    catalog::Proposer* proposer = proposer_.get();
    sources.reads = [proposer] { return proposer->read_stats(); };
    metrics_->AttachDataPlane(std::move(sources));
  }

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, security_->ServerCredentials(), &port_);
  transport::ConfigureServerBuilder(topts, &builder);
  // Audio moves in messages of up to 1 MiB (plus framing).
  builder.SetMaxReceiveMessageSize(4 << 20);
  builder.RegisterService(transport_->service());
  builder.RegisterService(cluster_service_->service());
  if (kv_service_) builder.RegisterService(kv_service_->service());
  if (replication_service_) builder.RegisterService(replication_service_->service());
  if (files_service_) builder.RegisterService(files_service_->service());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    DLOG_ERROR << "cannot listen on " << config_.listen;
    return kExitBadConfig;
  }

  if (files_) {
    if (int code = StartHttp(); code != kExitOk) return code;
  }
  if (peers_) peers_->Start();
  if (repair_) repair_->Start();
  if (scrubber_) scrubber_->Start();
  membership_thread_ = std::thread([this] { MembershipLoop(); });
  raft_->Start([this](int code) {
    {
      std::lock_guard lock(mu_);
      loop_exit_code_ = code;
      stop_requested_ = true;
    }
    cv_.notify_all();
  });
  DLOG_INFO << "dispotify-node " << version_ << ", node " << config_.node_id << " (uuid " << node_uuid_
            << ") of cluster '" << config_.cluster_id << "' serving gRPC on " << config_.listen << " (port "
            << port_
            << (security_->enabled() ? ", mutual TLS as " + security_->identity()->Uri() : ", PLAINTEXT")
            << "), metrics on port " << metrics_->port() << ", data in " << dir;
  return kExitOk;
}

int Node::StartSecurity() {
  if (config_.insecure_grpc) {
    // Every start, not once: whoever reads this log must see that the node is open.
    DLOG_WARN << "WARNING: insecure_grpc is set: node-to-node gRPC (Raft, replication, cluster, files) is "
                 "PLAINTEXT and UNAUTHENTICATED; anyone who reaches "
              << config_.listen
              << " can act as a member. Set tls_cert_file, tls_key_file and tls_ca_file instead.";
    security_ = tls::GrpcSecurity::Insecure();
    return kExitOk;
  }
  tls::GrpcSecurityOptions options;
  options.files = {config_.tls_cert_file, config_.tls_key_file, config_.tls_ca_file};
  options.cluster_id = config_.cluster_id;
  // A node presents only its own identity: a certificate of another node or cluster (a mis-mounted
  // Secret) is refused at start and at every rotation.
  options.expected_identity = tls::Identity::Node(config_.cluster_id, config_.node_id);
  options.publish_dir = config_.data_dir + "/tls";
  options.poll_interval = std::chrono::milliseconds(config_.tls_poll_interval_ms);
  Metrics* metrics = metrics_.get();
  options.on_rotate = [metrics](const tls::CredentialBundle& bundle) {
    const double not_after = std::chrono::duration<double>(bundle.not_after.time_since_epoch()).count();
    DLOG_INFO << "TLS: rotated to certificate generation " << bundle.generation << " for "
              << bundle.identity.Uri() << ", valid until " << static_cast<int64_t>(not_after)
              << " (seconds since the epoch)";
    metrics->SetTlsCertNotAfter(not_after);
  };
  auto security = tls::GrpcSecurity::Create(std::move(options));
  if (!security.ok()) {
    DLOG_ERROR << "refusing to start: TLS: " << security.status().message() << " (tls_cert_file "
               << config_.tls_cert_file << ", tls_key_file " << config_.tls_key_file << ", tls_ca_file "
               << config_.tls_ca_file << ")";
    return kExitBadConfig;
  }
  security_ = std::move(security).value();
  metrics_->SetTlsCertNotAfter(security_->not_after_seconds());
  // The membership as the Raft node sees it now, at each call: raft_ exists before the server
  // (and so before any call) and lives until after it stops.
  authorizer_ = std::make_unique<tls::PeerAuthorizer>(config_.cluster_id, config_.node_id, [this] {
    std::set<NodeId> ids;
    if (!raft_) return ids;
    for (const auto& [id, member] : raft_->status().conf.members) ids.insert(id);
    return ids;
  });
  DLOG_INFO << "TLS: gRPC uses mutual TLS as " << security_->identity()->Uri() << " (certificate valid until "
            << static_cast<int64_t>(security_->not_after_seconds()) << "); files re-read every "
            << config_.tls_poll_interval_ms << " ms";
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
  if (code == kExitOk) HandOffLeadership(kHandOffBudget);
  DLOG_INFO << "stopping"
            << (code == kExitOk ? "" : " after a fatal condition (exit code " + std::to_string(code) + ")");
  Shutdown();
  DLOG_INFO << "stopped";
  return code;
}

void Node::HandOffLeadership(std::chrono::milliseconds budget) {
  if (!raft_ || raft_->status().role != consensus::Role::kLeader) return;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + budget;
  // The core abandons a transfer that did not complete within an election timeout (the target was
  // behind or unreachable): ask again, for the then most up-to-date voter, after that long.
  const auto retry_after = std::chrono::milliseconds(config_.tick_ms * config_.election_ticks);
  const Term term = raft_->status().term;
  NodeId target;
  auto asked = Clock::time_point();
  std::optional<Clock::time_point> stepped_down;
  while (Clock::now() < deadline) {
    NodeStatus st = raft_->status();
    if (!st.running) return;
    if (st.role != consensus::Role::kLeader) {
      // Stepped down without a successor in sight (e.g. check-quorum with the others down): wait
      // a little for the new leader's first message, not the whole budget.
      if (!stepped_down) stepped_down = Clock::now();
      if (Clock::now() - *stepped_down > 2 * retry_after) break;
      if (st.leader != kNoNode && st.leader != config_.node_id) {
        DLOG_INFO << "stopping: handed leadership to node " << st.leader << " (term " << term << " -> "
                  << st.term << ") in "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()
                  << " ms";
        return;
      }
    } else if (target == kNoNode || Clock::now() - asked >= retry_after) {
      target = MostUpToDateVoter(st);
      if (target == kNoNode) {
        DLOG_INFO << "stopping as leader: no other voter to hand leadership to";
        return;
      }
      DLOG_INFO << "stopping: transferring leadership to node " << target;
      asked = Clock::now();
      raft_->TransferLeadership(target, [target](const Status& s) {
        if (!s.ok()) DLOG_WARN << "leadership transfer to node " << target << " refused: " << s.ToString();
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (stepped_down) {
    DLOG_INFO << "stopping: stepped down as leader; no new leader known yet";
  } else {
    DLOG_WARN << "stopping as leader: no other node took over within " << budget.count()
              << " ms; the others elect a leader after an election timeout";
  }
}

void Node::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_background_ = true;
  }
  cv_.notify_all();
  // Scrapes read the data plane: they stop reading it before any of it goes away.
  if (metrics_) metrics_->DetachDataPlane();
  // Requests in flight finish first (a short grace), new ones are refused.
  if (http_) http_->Stop(std::chrono::seconds(5));
  // Scrapes are checked by auth_'s guard, which goes before metrics_ does.
  if (metrics_) metrics_->StopServing();
  if (membership_thread_.joinable()) membership_thread_.join();
  // What the last requests recorded goes out while Raft still runs.
  if (audit_) audit_->Stop();
  if (repair_) repair_->Stop();
  if (scrubber_) scrubber_->Stop();
  if (peers_) peers_->Stop();
  // In-flight uploads and reads get a short grace period; Raft streams need none.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  if (raft_) raft_->Stop();
  if (transport_) transport_->Shutdown();
  server_.reset();
}

int Node::OpenCatalog() {
  const std::string& dir = config_.data_dir;
  // Every REST worker may read at once, plus repair, the scrubber and gRPC: keep that many
  // PostgreSQL reader connections open rather than reconnecting under load.
  catalog::PostgresStoreOptions pg_options;
  pg_options.max_idle_read_connections = static_cast<size_t>(config_.http_workers) + 4;
  auto store = config_.metadata_store == "postgres"
                   ? catalog::OpenPostgresStore(config_.postgres_url, pg_options)
                   : catalog::OpenSqliteStore(dir + "/catalog.db");
  if (!store.ok())
    return StorageFailure("cannot open the " + config_.metadata_store + " metadata store", store.status());
  metadata_ = std::move(store).value();
  auto sm = catalog::CatalogStateMachine::Open(metadata_.get());
  if (!sm.ok()) return StorageFailure("cannot open the catalog", sm.status());
  catalog_ = std::move(sm).value();
  replication::BlobStoreOptions blob_options;
  blob_options.reserved_bytes = config_.min_free_mib << 20;
  // Encryption at rest: a keyring that cannot be used stops the node here, before any blob is
  // written in plaintext by a node its operator meant to encrypt.
  if (!config_.encryption_keyring_file.empty()) {
    auto keyring = replication::Keyring::LoadFile(config_.encryption_keyring_file);
    if (!keyring.ok()) {
      DLOG_ERROR << "encryption_keyring_file: cannot use the keyring: " << keyring.status().ToString();
      return kExitBadConfig;
    }
    DLOG_INFO << "encryption at rest on: " << keyring->size() << " keys, new blobs sealed under '"
              << keyring->current_id() << "'";
    blob_options.keyring = std::make_shared<const replication::Keyring>(std::move(keyring).value());
  }
  auto blobs = replication::OpenBlobStore(*fs_, dir, blob_options);  // files in dir/blobs
  if (!blobs.ok()) return StorageFailure("cannot open the blob store", blobs.status());
  blobs_ = std::move(blobs).value();
  return kExitOk;
}

void Node::StartDataPlane() {
  RaftNode* raft = raft_.get();
  auto members = [raft] {
    std::vector<NodeId> ids;
    for (const auto& [id, member] : raft->status().conf.members) ids.push_back(id);
    return ids;
  };
  auto is_leader = [raft] { return raft->status().role == consensus::Role::kLeader; };
  catalog::CatalogStateMachine* sm = catalog_.get();
  auto factor = [sm] { return sm->replication_factor(); };
  proposer_ = std::make_unique<CatalogProposer>(raft, LevelGate(), security_->ChannelCredentials());
  // A replica commits an upload's copy only while the upload's lease is still the id's current
  // one (checked linearizably), so a writer that lost its lease cannot replace a newer copy.
  catalog::Proposer* fence_proposer = proposer_.get();
  catalog::MetadataStore* fence_store = metadata_.get();
  const auto read_timeout = std::chrono::milliseconds(config_.read_timeout_ms);
  blobs_->SetFence([fence_proposer, fence_store, read_timeout](const std::string& name, uint64_t token) {
    DISPOTIFY_RETURN_IF_ERROR(fence_proposer->CatchUp(read_timeout));
    auto lock = fence_store->GetLock(name);
    if (!lock.ok()) return lock.status();
    if (!lock->has_value() || (*lock)->token != token)
      return Status::Aborted("the upload's lease on " + name + " was taken over; its copy is refused");
    return Status::Ok();
  });
  replication::PeerClientOptions popts;
  popts.self = config_.node_id;
  popts.cluster_id = config_.cluster_id;
  popts.channel_credentials = security_->ChannelCredentials();
  peers_ = std::make_unique<replication::PeerClient>(popts, blobs_.get());

  // Members that may receive copies: draining ones are left out (their copies move away), and so
  // are members down for longer than dead_after_s (their files are copied elsewhere meanwhile).
  catalog::MetadataStore* store = metadata_.get();
  replication::PeerClient* peers = peers_.get();
  const std::chrono::milliseconds dead_after = std::chrono::seconds(config_.dead_after_s);
  auto placement_nodes = [members, store, peers, dead_after] {
    std::vector<NodeId> ids = members();
    if (dead_after.count() > 0) {
      std::erase_if(ids, [&](NodeId id) { return peers->DownFor(id) >= dead_after; });
    }
    auto draining = store->GetSetting(catalog::kDrainingNodesKey);
    if (!draining.ok() || !draining->has_value()) return ids;
    const std::vector<NodeId> out = catalog::ParseNodeList(**draining);
    std::erase_if(ids, [&](NodeId id) { return std::find(out.begin(), out.end(), id) != out.end(); });
    return ids;
  };
  replication_service_ = std::make_unique<replication::ReplicationService>(
      blobs_.get(), config_.node_id, config_.cluster_id, peers_.get(),
      [raft] { return raft->status().applied.value(); }, authorizer_.get());

  replication::FileServiceOptions fopts;
  fopts.self = config_.node_id;
  fopts.max_file_bytes = config_.max_upload_mib << 20;
  fopts.read_timeout = std::chrono::milliseconds(config_.read_timeout_ms);
  fopts.lock_ttl = std::chrono::milliseconds(config_.upload_lock_ttl_ms);
  replication::FileServiceDeps fdeps;
  fdeps.store = metadata_.get();
  fdeps.proposer = proposer_.get();
  fdeps.peers = peers_.get();
  fdeps.members = placement_nodes;
  fdeps.replication_factor = factor;
  files_ = std::make_unique<replication::FileService>(fopts, fdeps);

  replication::RepairOptions ropts;
  ropts.self = config_.node_id;
  ropts.interval = std::chrono::milliseconds(config_.repair_interval_ms);
  ropts.bytes_per_second = config_.repair_bytes_per_s;
  ropts.concurrency = config_.repair_concurrency;
  ropts.initial_replication_factor = config_.replication_factor;
  replication::RepairDeps rdeps;
  rdeps.store = metadata_.get();
  rdeps.proposer = proposer_.get();
  rdeps.peers = peers_.get();
  rdeps.members = members;
  rdeps.placement_nodes = placement_nodes;
  rdeps.replication_factor = factor;
  rdeps.is_leader = is_leader;
  repair_ = std::make_unique<replication::RepairManager>(ropts, rdeps);

  replication::ScrubberOptions sopts;
  sopts.self = config_.node_id;
  sopts.scrub_interval = std::chrono::seconds(config_.scrub_interval_s);
  if (config_.inventory_interval_ms > 0)
    sopts.inventory_interval = std::chrono::milliseconds(config_.inventory_interval_ms);
  if (config_.orphan_grace_ms > 0) sopts.orphan_grace = std::chrono::milliseconds(config_.orphan_grace_ms);
  scrubber_ = std::make_unique<replication::Scrubber>(sopts, blobs_.get(), metadata_.get(), proposer_.get(),
                                                      peers_.get());

  api::FilesServiceDeps adeps;
  adeps.files = files_.get();
  adeps.store = metadata_.get();
  adeps.proposer = proposer_.get();
  adeps.blobs = blobs_.get();
  adeps.repair = repair_.get();
  adeps.is_leader = is_leader;
  adeps.replication_factor = factor;
  adeps.authorizer = authorizer_.get();
  files_service_ = std::make_unique<api::FilesService>(adeps);
}

int Node::StartHttp() {
  if (config_.http_listen.empty()) return kExitOk;
  const std::string spool = config_.data_dir + "/spool";
  // Uploads interrupted by a crash leave spool files behind; nothing else lives there.
  (void)fs_->CreateDirs(spool);
  if (auto names = fs_->ListDir(spool); names.ok()) {
    for (const auto& name : *names) (void)fs_->Remove(spool + "/" + name);
  }
  cluster_control_ = std::make_unique<RaftClusterControl>(raft_.get(), security_->ChannelCredentials());
  api::RestApiOptions options;
  options.self = config_.node_id;
  options.max_upload_bytes = config_.max_upload_mib << 20;
  // With auth on, the static token is one credential among others (the guard checks it); the old
  // admin-only check would refuse an admin signed in any other way.
  options.bearer_token = config_.auth ? "" : config_.api_token;
  options.spool_dir = spool;
  options.version = version_;
  options.cluster_id = config_.cluster_id;
  options.node_uuid = node_uuid_;
  api::RestApiDeps deps;
  deps.files = files_.get();
  deps.store = metadata_.get();
  deps.proposer = proposer_.get();
  deps.blobs = blobs_.get();
  deps.peers = peers_.get();
  deps.repair = repair_.get();
  deps.cluster = cluster_control_.get();
  catalog::CatalogStateMachine* sm = catalog_.get();
  deps.replication_factor = [sm] { return sm->replication_factor(); };
  // TagLib runs in a separate, resource-limited process per upload (node/api/tags/).
  deps.read_tags = [](const std::string& path) -> Result<api::AudioInfo> {
    auto tags = api::tags::ReadTags(path);
    if (!tags.ok()) return tags.status();
    api::AudioInfo info;
    info.format = tags->format;
    info.title = tags->title;
    info.artist = tags->artist;
    info.album = tags->album;
    info.track = tags->track;
    info.year = tags->year;
    info.duration_ms = tags->duration_ms;
    info.album_artist = tags->album_artist;
    info.disc = tags->disc;
    info.genre = tags->genre;
    info.compilation = tags->compilation;
    info.cover = tags->cover_sha256;
    return info;
  };
  // Thumbnails of embedded pictures, rendered by the same sandboxed tagger (node/api/covers.h).
  api::CoverServiceOptions cover_options;
  cover_options.cache_dir = config_.data_dir + "/cover-cache";
  cover_options.spool_dir = spool;
  api::CoverServiceDeps cover_deps;
  cover_deps.store = metadata_.get();
  cover_deps.files = files_.get();
  cover_deps.render = [](const std::string& path, uint32_t size) {
    return api::tags::RenderCover(path, size);
  };
  covers_ = std::make_unique<api::CoverService>(cover_options, cover_deps);
  if (Status s = covers_->Start(); !s.ok()) {
    DLOG_ERROR << s.message();
    return kExitBadConfig;
  }
  deps.covers = covers_.get();
  if (config_.auth) {
    api::AuthApiOptions auth_options;
    auth_options.session_ttl = std::chrono::seconds(config_.session_ttl_s);
    auth_options.secure_cookie = config_.secure_cookies;
    auth_options.static_admin_token = config_.api_token;
    auth_options.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    // The audit trail: entries batched into Raft commands once a second (node/audit/audit_log.h).
    audit::AuditLog::Options audit_options;
    audit_options.now_ms = auth_options.now_ms;
    catalog::Proposer* proposer = proposer_.get();
    audit_ =
        std::make_unique<audit::AuditLog>(audit_options, [proposer](const std::vector<std::string>& entries) {
          return proposer->Propose(catalog::AppendAuditCmd{entries}, std::chrono::seconds(10)).status();
        });
    audit_->Start();
    auth_options.audit = audit_.get();
    deps.audit = audit_.get();
    if (!config_.oidc_issuer.empty()) {
      auth::KeyCache::Options key_options;
      key_options.issuer = config_.oidc_issuer;
      // The fetch runs on the request thread that needs the keys (KeyCache), so it is bounded
      // in time and size; KeyCache logs each failed attempt (at most one per refetch interval).
      oidc_keys_ = std::make_unique<auth::KeyCache>(key_options, auth::MakeHttpFetcher());
      auth_options.oidc = oidc_keys_.get();
      auth_options.oidc_policy.issuer = config_.oidc_issuer;
      auth_options.oidc_policy.audience = config_.oidc_audience;
      auth_options.oidc_policy.roles_claim = config_.oidc_roles_claim;
      auth_options.oidc_policy.leeway_s = config_.oidc_leeway_s;
      DLOG_INFO << "oidc: accepting JWT bearer tokens of " << config_.oidc_issuer << " for audience "
                << config_.oidc_audience << ", roles from the claim " << config_.oidc_roles_claim;
      if (!config_.oidc_client_id.empty()) {
        auth_options.oidc_login.client_id = config_.oidc_client_id;
        auth_options.oidc_login.client_secret = config_.oidc_client_secret;
        auth_options.oidc_login.redirect_uri = config_.oidc_redirect_uri;
        auth_options.oidc_login.scopes = config_.oidc_scopes;
        auth_options.oidc_login.post_form = [](const std::string& url, const std::string& form) {
          return auth::HttpPostForm(url, form, {});
        };
        DLOG_INFO << "oidc: browser login as client " << config_.oidc_client_id << ", back at "
                  << config_.oidc_redirect_uri;
      }
    }
    auth_ = std::make_unique<api::AuthApi>(std::move(auth_options), metadata_.get(), proposer_.get());
    deps.auth = auth_.get();
    metrics_->SetGuard(auth_.get());
  } else {
    DLOG_WARN << "auth is off: anyone who reaches " << config_.http_listen
              << " may upload, delete and administer (set auth: true; docs/security.md)";
  }
  api::http::Router router;
  api::AddRestRoutes(options, deps, &router);
  if (Status s = api::AddWebUi(config_.web_root, &router); !s.ok()) {
    DLOG_ERROR << s.message();
    return kExitBadConfig;
  }
  api::http::ServerOptions hopts;
  const auto colon = config_.http_listen.rfind(':');
  hopts.address = config_.http_listen.substr(0, colon);
  hopts.port = static_cast<uint16_t>(std::stoi(config_.http_listen.substr(colon + 1)));
  hopts.worker_threads = static_cast<size_t>(config_.http_workers);
  hopts.observer = metrics_.get();
  hopts.guard = auth_.get();
  const bool https = !config_.http_tls_cert_file.empty();
  if (https) {
    auto loaded = tls::ReloadingServerContext::Load(
        {config_.http_tls_cert_file, config_.http_tls_key_file, config_.http_tls_client_ca_file},
        std::chrono::milliseconds(config_.tls_poll_interval_ms));
    if (!loaded.ok()) {
      DLOG_ERROR << "refusing to start: HTTPS: " << loaded.status().message();
      return kExitBadConfig;
    }
    // Owned by the server's options: the poller stops when the server is destroyed.
    std::shared_ptr<tls::ReloadingServerContext> source = std::move(loaded).value();
    source->Start();
    hopts.tls_context = [source] { return source->Current(); };
  }
  http_ = std::make_unique<api::http::HttpServer>(hopts, std::move(router));
  if (Status s = http_->Start(); !s.ok()) {
    DLOG_ERROR << "cannot serve HTTP on " << config_.http_listen << ": " << s.message();
    return kExitBadConfig;
  }
  metrics_->AttachHttpServer(http_.get());
  DLOG_INFO << "REST API on " << (https ? "https://" : "http://") << hopts.address << ":" << http_->port()
            << (https ? " (TLS only; certificate re-read every " +
                            std::to_string(config_.tls_poll_interval_ms) + " ms)"
                      : "");
  return kExitOk;
}

void Node::TrimAudit() {
  audit::Retention retention;
  retention.max_age_ms = config_.audit_retention_days * 24 * 3600 * 1000;
  retention.max_entries = config_.audit_max_entries;
  if (retention.max_age_ms == 0 && retention.max_entries == 0) return;
  auto head_text = metadata_->GetSetting(catalog::kAuditHeadKey);
  if (!head_text.ok() || !head_text->has_value()) return;  // no trail yet (or unreadable: next round)
  const auto head = audit::ParseHead(**head_text);
  // A few hundred of the oldest entries each round: a big backlog goes over several rounds.
  auto rows = metadata_->ListSettings(catalog::kAuditEntryPrefix, "", 256);
  if (!head || !rows.ok() || rows->empty()) return;
  std::vector<audit::Entry> oldest;
  for (const auto& [key, value] : *rows) {
    auto entry = audit::Decode(value);
    if (!entry.ok()) {
      DLOG_WARN << "audit retention: " << key << " does not decode; nothing trimmed (audit verify names it)";
      return;
    }
    oldest.push_back(std::move(entry).value());
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const uint64_t through = audit::TrimThrough(retention, oldest, head->seq, now_ms, catalog::kMaxAuditTrim);
  if (through == 0) return;
  auto done = proposer_->Propose(catalog::TrimAuditCmd{through}, std::chrono::seconds(10));
  if (!done.ok()) {
    DLOG_WARN << "audit retention: trimming through " << through << " failed: " << done.status().message();
    return;
  }
  DLOG_INFO << "audit retention: dropped entries " << oldest.front().seq << ".." << through
            << "; the chain's checkpoint is now entry " << through;
}

void Node::BootstrapAdmin() {
  std::string password = config_.admin_password;
  const bool generated = password.empty();
  if (generated) {
    auto secret = auth::MakeSecret("");
    if (!secret.ok()) {
      DLOG_ERROR << "cannot generate the first admin's password: " << secret.status().message();
      return;
    }
    password = secret->secret;
  }
  auto created = auth_->BootstrapAdmin(config_.admin_user, password);
  if (!created.ok()) {
    // Typically a rolling upgrade with members below command level 4: tried again next round.
    DLOG_DEBUG << "first admin not created yet: " << created.status().message();
    return;
  }
  admin_bootstrapped_ = true;
  if (!*created) return;
  if (generated) {
    DLOG_WARN << "created the first admin \"" << config_.admin_user << "\" with the generated password "
              << password << " (shown once, here; change it with PUT /auth/password)";
  } else {
    DLOG_INFO << "created the first admin \"" << config_.admin_user << "\" from admin_password_file";
  }
}

void Node::MembershipLoop() {
  constexpr auto kPeriod = std::chrono::milliseconds(200);
  constexpr uint64_t kPromoteMaxLag = 1000;
  std::shared_ptr<grpc::Channel> join_channel;
  bool told_incarnation = false;
  std::vector<std::string> seeds;
  for (const auto& [id, addr] : config_.peers) {
    if (id != config_.node_id) seeds.push_back(addr);
  }
  // The seeds' addresses, resolved again each time they are used up: the nodes behind a name
  // change as they start and stop (ResolveSeeds).
  std::vector<std::string> targets;
  size_t next_target = 0;
  for (bool first = true;; first = false) {
    {
      std::unique_lock lock(mu_);
      // The first round runs at once: the peer table must not stay empty for a period.
      cv_.wait_for(lock, first ? std::chrono::milliseconds(0) : kPeriod,
                   [this] { return stopping_background_; });
      if (stopping_background_) return;
    }
    NodeStatus st = raft_->status();
    if (auth_ && st.role == consensus::Role::kLeader) {
      if (!admin_bootstrapped_) BootstrapAdmin();
      if (std::chrono::steady_clock::now() >= next_token_sweep_) {
        next_token_sweep_ = std::chrono::steady_clock::now() + std::chrono::minutes(1);
        if (auto swept = auth_->SweepExpired(); !swept.ok()) {
          DLOG_WARN << "expired tokens not swept: " << swept.status().message();
        } else if (*swept > 0) {
          DLOG_INFO << "removed " << *swept << " expired tokens and sessions";
        }
      }
      if (std::chrono::steady_clock::now() >= next_audit_trim_) {
        next_audit_trim_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        TrimAudit();
      }
    }
    if (peers_) {
      std::map<NodeId, std::string> addresses;
      // Self included: a copy this node serves is pulled by others from its address.
      for (const auto& [id, member] : st.conf.members) addresses[id] = member.address;
      peers_->SetPeers(addresses);
    }
    // Register with the leader until the configuration lists this node as itself (not as an
    // earlier incarnation of its id: the leader refuses that until the old member is removed).
    if (config_.join && !st.conf.ContainsIncarnation(config_.node_id, node_uuid_) && !seeds.empty()) {
      if (next_target >= targets.size()) {
        targets = ResolveSeeds(seeds);
        next_target = 0;
      }
      const std::string target = targets[next_target];
      join_channel = grpc::CreateChannel(target, security_->ChannelCredentials());
      auto stub = v1::Cluster::NewStub(join_channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::MembershipRequest req;
      req.set_op(v1::MembershipRequest::ADD_LEARNER);
      req.set_node_id(config_.node_id.value());
      req.set_address(config_.advertise.empty() ? config_.listen : config_.advertise);
      req.set_node_uuid(node_uuid_);
      v1::MembershipResponse resp;
      grpc::Status gs = stub->ChangeMembership(&ctx, req, &resp);
      if (gs.ok()) {
        DLOG_INFO << "registered with the leader as a learner (via " << target << ")";
      } else {
        const std::string& msg = gs.error_message();
        // "not-leader:<id>:<host:port>" (grpc_call.h); the address is empty when no leader is known.
        constexpr std::string_view kNotLeader = "not-leader:";
        const size_t id_end =
            msg.rfind(kNotLeader, 0) == 0 ? msg.find(':', kNotLeader.size()) : std::string::npos;
        ++next_target;
        if (id_end != std::string::npos && id_end + 1 < msg.size()) {
          // Go straight to the leader next time, then back to the seeds (resolved afresh) if that
          // fails: the list never grows, however many redirects come.
          targets.resize(next_target);
          targets.push_back(msg.substr(id_end + 1));
        } else if (gs.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                   msg.rfind(kNotLeader, 0) != 0 && !told_incarnation) {
          told_incarnation = true;  // e.g. "a member as incarnation X": waits for its removal
          DLOG_WARN << "cannot register with the leader yet: " << msg;
        }
      }
    }
    // Opt-in: the leader promotes learners that have caught up, one per round.
    if (config_.auto_promote && st.role == consensus::Role::kLeader) {
      for (const auto& [id, member] : st.conf.members) {
        if (member.voter) continue;
        auto it = st.match.find(id);
        // Match 0: it never answered, and may not be reachable (see ClusterService's PROMOTE).
        if (it == st.match.end() || it->second == LogIndex() ||
            it->second.value() + kPromoteMaxLag < st.commit.value())
          continue;
        consensus::ConfChange cc;
        cc.type = consensus::ConfChangeType::kPromote;
        cc.node = id;
        raft_->ProposeConfChange(cc, [id](const Status& s, LogIndex, const std::string&) {
          if (s.ok()) DLOG_INFO << "auto-promote: node " << id.value() << " is now a voter";
        });
        break;
      }
    }
  }
}

}  // namespace dispotify::server
