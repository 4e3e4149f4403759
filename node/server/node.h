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
//
// Shutdown order: the Raft loop first (pending calls fail with UNAVAILABLE), then the transport,
// then the gRPC server.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

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
}  // namespace dispotify

namespace dispotify::server {

class KvService;
class Metrics;
class RaftNode;

class Node {
 public:
  explicit Node(NodeConfig config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Start() finished a one-shot command (--reset): exit 0 without serving.
  static constexpr int kCompleted = -1;

  // Opens everything and starts serving. Returns 0, kCompleted, or the process exit code to fail
  // with (after logging why): 2 bad configuration, 3 foreign data dir, 4 removed member, 5 storage
  // failure.
  int Start();
  // Blocks until RequestStop() or until the Raft loop stops by itself; then shuts down in order
  // and returns the exit code.
  int Wait();
  // Thread-safe; safe to call at any time, any number of times.
  void RequestStop();

  // For tests: the gRPC port actually bound and the metrics port.
  int port() const { return port_; }
  int metrics_port() const;
  RaftNode* raft() const { return raft_.get(); }

 private:
  void Shutdown();

  NodeConfig config_;
  FileSystem* fs_ = nullptr;
  std::unique_ptr<storage::LogStore> log_;
  std::unique_ptr<storage::StableStore> stable_;
  std::unique_ptr<storage::SnapshotStore> snapshots_;
  std::unique_ptr<kv::KvStateMachine> kv_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<transport::GrpcTransport> transport_;
  std::unique_ptr<RaftNode> raft_;
  std::unique_ptr<KvService> kv_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;  // guarded by mu_
  int loop_exit_code_ = 0;       // guarded by mu_
  bool shut_down_ = false;
};

}  // namespace dispotify::server
