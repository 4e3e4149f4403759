#pragma once
// Multi-process harness for the e2e tests: real dispotify-node processes on loopback, each in its
// own process group, with free ports and temp data dirs. Every process is SIGKILLed when its
// guard is destroyed, so a failing test never leaves nodes behind.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dispotify/v1/kv.grpc.pb.h"
#include "node/server/kv_client.h"

namespace dispotify::e2e {

// Binds 127.0.0.1:0 to let the kernel pick a free port, and releases it.
int FreePort();
std::string MakeTempDir(const std::string& prefix);

// Writes a keyring file (node/replication/sealed_blob.h: "<id>:<base64 of 32 bytes>" lines, the
// last one current) with mode 0600, as the node requires; each key is 32 bytes derived from its
// id, so a test that rewrites the file for a rotation gets the same bytes for the same id.
void WriteKeyringFile(const std::string& path, const std::vector<std::string>& key_ids);

// One child process (RAII): started in its own process group; killed with SIGKILL on destruction.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits up to `timeout` for the exit; the exit code (128 + signal when killed), or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

struct NodeSpec {
  uint64_t id = 0;
  int port = 0;
  int metrics_port = 0;
  int http_port = 0;  // the REST API (catalog mode)
  std::string data_dir;
  // When set, the other nodes reach this one at this port (e.g. a proxy the test can cut) and the
  // node advertises it; it still listens on `port`.
  int peer_port = 0;
  // When set, the node gets --encryption-keyring-file with it (encryption at rest); see
  // WriteKeyringFile.
  std::string keyring_file;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  std::string peer_address() const {
    return "127.0.0.1:" + std::to_string(peer_port != 0 ? peer_port : port);
  }
};

// Every test cluster runs with mutual TLS on its gRPC (as a node refuses to start without it):
// the harness makes a CA for the cluster in <base>/tls, one certificate per node (id n gets
// spiffe://dispotify/<cluster_id>/node/n), and passes them with a short poll interval
// (kTlsPollMs) so rotation tests run fast. The test process speaks gRPC as a member: Channel-
// Credentials() presents node 1's certificate unless asked otherwise. DISPOTIFY_E2E_INSECURE_GRPC=1
// runs every test cluster plaintext instead (to tell a TLS problem from another).
class Cluster {
 public:
  static constexpr int kTlsPollMs = 200;

  // Reserves ports and data dirs for `n` nodes (ids 1..n) under a fresh temp dir.
  explicit Cluster(int n, std::string cluster_id = "e2e");
  ~Cluster();

  // Adds a spec for one more node (id n+1), not started.
  uint64_t AddSpec();
  // "1=127.0.0.1:p1,2=..." of the first `count` nodes (all when 0).
  std::string Peers(size_t count = 0) const;
  // Starts node `id` with --peers Peers(initial) plus `extra` flags.
  void Start(uint64_t id, const std::vector<std::string>& extra = {}, size_t initial = 0);
  void StartAll();
  void Kill9(uint64_t id);
  // SIGTERM and wait; returns the exit code.
  std::optional<int> Stop(uint64_t id, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Runs the node binary to completion (for --reset or refusals); returns its exit code.
  std::optional<int> RunToExit(uint64_t id, const std::vector<std::string>& extra,
                               std::chrono::milliseconds timeout = std::chrono::seconds(20));
  Process* process(uint64_t id);

  // Polls KV.Status until a node reports itself leader and the others that are up agree.
  // Returns its id (0 on timeout).
  uint64_t WaitLeader(std::chrono::milliseconds timeout = std::chrono::seconds(20),
                      std::optional<uint64_t> excluding = std::nullopt);
  std::optional<v1::StatusResponse> Status(uint64_t id);
  // Polls node `id` until its applied index reaches `index`.
  bool WaitApplied(uint64_t id, uint64_t index, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::vector<std::string> Endpoints() const;
  std::string LogPath(uint64_t id) const;
  // Prints the tail of each node's log (on failure).
  void DumpLogs() const;

  // Flags added to every later start of every node (e.g. a small --snapshot-entries).
  void SetCommonFlags(std::vector<std::string> flags) { common_flags_ = std::move(flags); }
  // Flags every start of every node gets, before the common flags (e.g. the state machine).
  void SetBaseFlags(std::vector<std::string> flags) { base_flags_ = std::move(flags); }

  // Plaintext gRPC for every later start (--insecure-grpc): for tests of what TLS is not about
  // that must compare against plaintext. Clients from ChannelCredentials() follow.
  void UseInsecureGrpc();
  bool tls() const { return tls_; }
  // Channel credentials of a client presenting node `as`'s certificate (plaintext when !tls()).
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(uint64_t as = 1) const;
  // The files of node `id`'s certificate; the CA file.
  std::string TlsCertPath(uint64_t id) const;
  std::string TlsKeyPath(uint64_t id) const;
  std::string TlsCaPath() const;
  // Issues node `id` a fresh certificate from the cluster CA valid for `days` and replaces its
  // files (each by rename, key and certificate one after the other, as a real tool would); the
  // node picks it up while it runs. Returns the new notAfter in seconds since the epoch.
  double IssueNodeCertificate(uint64_t id, int days = 30);
  // Writes a certificate and key naming node `node_id` of this cluster, signed by the cluster CA,
  // into <base>/tls/<name>.{crt,key} (a node that is no member, for the refusal tests); returns
  // the two paths.
  std::pair<std::string, std::string> IssueCertificate(uint64_t node_id, const std::string& name);
  // A CA rotation in the order docs/security.md gives. StartCaRotation makes a new CA for the
  // cluster, appends it to the CA file (the nodes then trust both) and issues every later
  // certificate from it; FinishCaRotation leaves only the new CA in the file (node 1 must have its
  // new certificate by then: the harness's own client presents it).
  void StartCaRotation();
  void FinishCaRotation();

  NodeSpec& spec(uint64_t id) { return specs_.at(id); }
  const std::string& base_dir() const { return base_; }
  const std::string& cluster_id() const { return cluster_id_; }

 private:
  std::vector<std::string> BaseArgs(uint64_t id) const;
  std::string base_;
  std::string cluster_id_;
  std::map<uint64_t, NodeSpec> specs_;
  std::map<uint64_t, std::unique_ptr<Process>> procs_;
  std::map<uint64_t, int> starts_;
  std::vector<std::string> common_flags_;
  std::vector<std::string> base_flags_;
  bool tls_ = true;
  std::string ca_cert_pem_;
  std::string ca_key_pem_;
  std::string ca_file_pem_;  // what the CA file holds once a CA rotation started (empty before)
  server::KvClient status_client_;
};

}  // namespace dispotify::e2e
