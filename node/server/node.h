#pragma once
// The composition root of dispotify-node: owns the configuration, the stores, the transport, the
// gRPC server, the state machine, the Raft loop and the metrics, and wires them in one place.
// main() only builds a Node from the configuration and runs it.
//
// Data directory layout:
//   <data_dir>/IDENTITY, REMOVED   fencing (node/storage/identity.h)
//   <data_dir>/log/                segmented Raft log
//   <data_dir>/state/              term, vote, commit hint
//   <data_dir>/snapshots/          state-machine snapshots
//   <data_dir>/catalog.db          the embedded metadata store (SQLite; not with postgres)
//   <data_dir>/blobs/              this node's copies of audio files (node/replication/blob_store.h)
//   <data_dir>/tls/                the validated copy of the TLS files gRPC watches (common/tls/publish.h)
//
// State machines: `catalog` (the default: the music store's catalog, with the data plane: blob
// store, peer client, Replication / Files / Cluster gRPC services, repair on the leader, scrubber
// on every node) or `kv` (the consensus tests and benchmark: KV + Cluster services only).
//
// Background duties of the root (one "membership" thread, every 500 ms): keep the peer client's
// address book equal to the Raft configuration; a node started with `join` registers itself with
// the leader as a learner, with its incarnation (node_uuid), until it appears in the configuration
// as itself (while the membership holds an earlier incarnation of its id -- it came back with an
// empty data directory -- the leader refuses until that member is removed); on the leader with
// auto_promote, promote learners that have caught up.
//
// Stopping (SIGTERM): a leader first hands leadership to the most up-to-date voter and waits for
// it to take over (bounded: kHandOffBudget; the outcome is logged), so the cluster need not sit
// out an election timeout; a follower stops at once. A loop that stopped by itself (removal,
// storage failure) skips the handoff.
//
// Security: every gRPC server and channel of the node takes its credentials from one
// tls::GrpcSecurity (mTLS from the tls_* files, or plaintext with insecure_grpc), and every
// service checks its callers with one tls::PeerAuthorizer over the Raft membership.
//
// Shutdown order: background work (membership thread, repair, scrubber, peer health), then the
// gRPC server's new calls stop while in-flight ones get a short grace period, then the Raft loop
// (pending calls fail with UNAVAILABLE), then the transport.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "node/server/command_levels.h"
#include "node/server/config.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace dispotify {
class FileSystem;
namespace storage {
class LogStore;
class StableStore;
class SnapshotStore;
}  // namespace storage
namespace transport {
class GrpcTransport;
}  // namespace transport
namespace kv {
class KvStateMachine;
}  // namespace kv
namespace catalog {
class MetadataStore;
class CatalogStateMachine;
}  // namespace catalog
namespace replication {
class BlobStore;
class PeerClient;
class ReplicationService;
class FileService;
class RepairManager;
class Scrubber;
}  // namespace replication
namespace audit {
class AuditLog;
}  // namespace audit
namespace auth {
class KeyCache;
}  // namespace auth
namespace api {
class AuthApi;
class CoverService;
class FilesService;
namespace http {
class HttpServer;
}  // namespace http
}  // namespace api
namespace consensus {
class StateMachine;
}  // namespace consensus
namespace tls {
class GrpcSecurity;
class PeerAuthorizer;
}  // namespace tls
}  // namespace dispotify

namespace dispotify::server {

class CatalogProposer;
class ClusterService;
class RaftClusterControl;
class KvService;
class Metrics;
class RaftNode;

class Node {
 public:
  // `version`: the software's version (main passes the build's, CMake's PROJECT_VERSION), shown
  // in /cluster/status so that an operator sees the mix of versions during a rolling upgrade.
  Node(NodeConfig config, std::string version);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Start() finished a one-shot command (--reset): exit 0 without serving.
  static constexpr int kCompleted = -1;
  // How long a stopping leader waits for another node to take over before it stops anyway.
  static constexpr std::chrono::milliseconds kHandOffBudget{5000};

  // Opens everything and starts serving. Returns 0, kCompleted, or the process exit code to fail
  // with (after logging why): 2 bad configuration, 3 foreign data dir, 4 removed member, 5 storage
  // failure.
  int Start();
  // Blocks until RequestStop() or until the Raft loop stops by itself; then shuts down in order
  // and returns the exit code.
  int Wait();
  // Thread-safe; safe to call at any time, any number of times.
  void RequestStop();

  // For tests: the gRPC port actually bound, the REST port (0 when off) and the metrics port.
  int port() const { return port_; }
  int http_port() const;
  int metrics_port() const;
  RaftNode* raft() const { return raft_.get(); }

 private:
  // Builds security_ and authorizer_ from the tls_* keys (or insecure_grpc). Returns an exit code.
  int StartSecurity();
  // Catalog mode: opens the metadata store, the blob store and the catalog state machine.
  int OpenCatalog();
  // The leader's command-level check (command_levels.h) over this node's membership and what its
  // transport heard from each peer.
  CommandLevelGate LevelGate();
  // Catalog mode, after the Raft node exists: the data plane's services and background work.
  void StartDataPlane();
  // Catalog mode: the REST API. Returns an exit code (kExitBadConfig when it cannot listen).
  int StartHttp();
  void MembershipLoop();
  // Leader, auth on: creates the first admin if the cluster has no user (MembershipLoop's thread).
  void BootstrapAdmin();
  // Leader, auth on: drops audit entries past the retention (MembershipLoop's thread).
  void TrimAudit();
  // Leader only: transfers leadership away and waits (up to `budget`) for another node to lead.
  void HandOffLeadership(std::chrono::milliseconds budget);
  void Shutdown();

  NodeConfig config_;
  const std::string version_;
  std::string node_uuid_;  // this data directory's incarnation (node/storage/identity.h)
  FileSystem* fs_ = nullptr;
  std::unique_ptr<storage::LogStore> log_;
  std::unique_ptr<storage::StableStore> stable_;
  std::unique_ptr<storage::SnapshotStore> snapshots_;
  std::unique_ptr<kv::KvStateMachine> kv_;
  std::unique_ptr<catalog::MetadataStore> metadata_;
  std::unique_ptr<catalog::CatalogStateMachine> catalog_;
  std::unique_ptr<replication::BlobStore> blobs_;
  std::unique_ptr<Metrics> metrics_;
  std::shared_ptr<tls::GrpcSecurity> security_;
  std::unique_ptr<tls::PeerAuthorizer> authorizer_;  // null with insecure_grpc
  std::unique_ptr<transport::GrpcTransport> transport_;
  std::unique_ptr<RaftNode> raft_;
  std::unique_ptr<KvService> kv_service_;
  std::unique_ptr<ClusterService> cluster_service_;
  std::unique_ptr<CatalogProposer> proposer_;
  std::unique_ptr<replication::PeerClient> peers_;
  std::unique_ptr<replication::ReplicationService> replication_service_;
  std::unique_ptr<replication::FileService> files_;
  std::unique_ptr<replication::RepairManager> repair_;
  std::unique_ptr<replication::Scrubber> scrubber_;
  std::unique_ptr<api::FilesService> files_service_;
  std::unique_ptr<RaftClusterControl> cluster_control_;
  std::unique_ptr<api::CoverService> covers_;  // before http_: its handlers use it until it stops
  std::unique_ptr<audit::AuditLog> audit_;     // before auth_ and http_, which record into it
  std::unique_ptr<auth::KeyCache> oidc_keys_;  // before auth_, which uses it (null: OIDC off)
  std::unique_ptr<api::AuthApi> auth_;         // before http_: the server's guard
  bool admin_bootstrapped_ = false;            // MembershipLoop's thread only
  std::chrono::steady_clock::time_point next_token_sweep_;  // MembershipLoop's thread only
  std::chrono::steady_clock::time_point next_audit_trim_;   // MembershipLoop's thread only
  std::unique_ptr<api::http::HttpServer> http_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::thread membership_thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;  // guarded by mu_
  int loop_exit_code_ = 0;       // guarded by mu_
  bool shut_down_ = false;
  bool stopping_background_ = false;  // guarded by mu_
};

}  // namespace dispotify::server
