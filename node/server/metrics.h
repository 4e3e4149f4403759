#pragma once
// Prometheus metrics of the node, served on their own port (GET /metrics) by the node's HTTP
// server (node/api/http), so that with security on the scrape is checked by the same guard as
// the REST API (permission `metrics`: the admin and metrics roles). Prometheus headers stay in metrics.cc:
// the Raft loop sees only the RaftObserver interface, the HTTP server only api::http::RequestObserver.
// docs/metrics.md lists every series with its type, labels and meaning; keep it in step.
//
// Sources:
//   - pushed: Raft state (OnState, ...) from the loop; one record per finished REST request
//     (OnRequest) from the HTTP server's workers;
//   - pulled on each scrape (before the registry is serialised): the data plane once attached
//     (blob store, peer client, repair manager, catalog store; catalog mode only) and the process
//     (/proc/self). Counters fed from a monotonic source (repair's copies, CPU time) are
//     incremented by the difference since the previous scrape, so they stay counters.
//
// Threads: every method is thread-safe. Scrapes run on the server's threads; the data-plane
// sources are read there, so DetachDataPlane must run before any of them is destroyed.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "node/api/http/http_server.h"
#include "node/catalog/proposer.h"
#include "node/server/raft_node.h"

namespace dispotify {
namespace catalog {
class MetadataStore;
}  // namespace catalog
namespace replication {
class BlobStore;
class PeerClient;
class RepairManager;
}  // namespace replication
}  // namespace dispotify

namespace dispotify::server {

// Where the data-plane gauges come from. A null pointer or empty function leaves its series at
// their last values (0 before the first read).
struct DataPlaneSources {
  replication::BlobStore* blobs = nullptr;
  replication::PeerClient* peers = nullptr;
  replication::RepairManager* repair = nullptr;
  catalog::MetadataStore* catalog = nullptr;
  // Repair's per-walk gauges (under-replicated, unavailable, queue) are the leader's view: 0 on a
  // node that does not lead now.
  std::function<bool()> is_leader;
  std::function<uint32_t()> replication_factor;
  // Linearizable catalog reads and the read-index rounds they took (Proposer::CatchUp).
  std::function<catalog::ReadStats()> reads;
};

// What dispotify_build_info says of this process. Its labels are the join key of the dashboard and
// the alerts: every series of a target is tied to its cluster and node through it (`* on (job,
// instance) group_left (cluster_id, node_id) dispotify_build_info`), so no deployment has to
// relabel each series.
struct BuildInfo {
  std::string version;
  std::string cluster_id;
  NodeId node_id;
};

class Metrics final : public RaftObserver, public api::http::RequestObserver {
 public:
  // Starts serving on `listen` (HOST:PORT; port 0 picks a free one). `guarded`: security is on,
  // and every scrape answers 503 until SetGuard is called, then whatever the guard decides.
  static Result<std::unique_ptr<Metrics>> Start(const std::string& listen, const BuildInfo& build,
                                                bool guarded = false);
  // The guard of scrapes (not owned; must outlive the serving: see StopServing).
  void SetGuard(api::http::RequestGuard* guard);
  // Stops answering scrapes (waits for those in flight). Idempotent; the destructor does it too.
  void StopServing();
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  int port() const;

  // Registers the data-plane series (replication, storage, peers, catalog) and reads them from
  // `sources` on every scrape. Calling it again replaces the sources.
  void AttachDataPlane(DataPlaneSources sources);
  // Stops reading the sources (waits for a scrape in progress); the series keep their last values.
  // Also stops reading the REST server attached below.
  void DetachDataPlane();

  // Registers the REST server's connection series (dispotify_http_connections_*,
  // dispotify_http_tls_handshake_failures_total) and reads `server`'s stats on every scrape until
  // DetachDataPlane. Not owned.
  void AttachHttpServer(const api::http::HttpServer* server);

  // dispotify_tls_cert_not_after_seconds: the notAfter of the certificate this node presents on
  // gRPC, set at start and after each rotation. Registered on first use: a plaintext node
  // (insecure_grpc) has no certificate and no series, so an expiry alert cannot fire on it.
  void SetTlsCertNotAfter(double seconds_since_epoch);

  // The text exposition a scrape would return now (refreshes the pulled series first).
  std::string Text();

  // RaftObserver
  void OnState(consensus::Role role, Term term, NodeId leader, LogIndex commit, LogIndex applied) override;
  void OnLeaderChange() override;
  void OnIncarnationRefusals(uint64_t messages) override;
  void ObserveFsync(double seconds) override;
  void ObserveProposal(double seconds) override;

  // api::http::RequestObserver
  void OnRequest(const api::http::RequestRecord& record) override;

 private:
  struct Impl;
  class Collector;
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dispotify::server
