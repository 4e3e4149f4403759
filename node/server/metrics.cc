#include "node/server/metrics.h"

#include <dirent.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "node/api/http/http_server.h"
#include "node/catalog/metadata_store.h"
#include "node/replication/blob_store.h"
#include "node/replication/peer_client.h"
#include "node/replication/repair.h"

namespace dispotify::server {

namespace {
constexpr std::array<consensus::Role, 4> kRoles = {consensus::Role::kFollower, consensus::Role::kPreCandidate,
                                                   consensus::Role::kCandidate, consensus::Role::kLeader};
const char* RoleLabel(consensus::Role r) {
  switch (r) {
    case consensus::Role::kFollower: return "follower";
    case consensus::Role::kPreCandidate: return "pre_candidate";
    case consensus::Role::kCandidate: return "candidate";
    case consensus::Role::kLeader: return "leader";
  }
  return "unknown";
}

// The routes whose bodies are the music moved by the REST API (node/api/rest_api.cc).
constexpr std::string_view kUploadRoute = "/music/upload";
constexpr std::string_view kStreamRoute = "/music/stream/{file_id}";

// 50 us .. ~3.3 s, doubling: fsyncs sit at the low end, proposals a little above.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  for (double v = 50e-6; v < 4.0; v *= 2) b.push_back(v);
  return b;
}

// 1 ms .. 60 s: small JSON answers at the low end, whole-song uploads and streams at the top.
const prometheus::Histogram::BucketBoundaries& HttpBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return kBuckets;
}

// Methods outside this set (anything a client can send) share one label value.
std::string_view MethodLabel(std::string_view method) {
  static constexpr std::array<std::string_view, 7> kKnown = {"GET",    "HEAD",  "POST",   "PUT",
                                                             "DELETE", "PATCH", "OPTIONS"};
  for (std::string_view m : kKnown) {
    if (m == method) return m;
  }
  return "other";
}

// A counter fed from a monotonic source: incremented by the growth since the last reading. A
// source that went backwards was restarted; its whole value is new.
template <typename T>
struct CounterFeed {
  prometheus::Counter* counter = nullptr;
  T last{};
  void Update(T now) {
    counter->Increment(static_cast<double>(now >= last ? now - last : now));
    last = now;
  }
};

// What /proc/self says (Linux). Fields that could not be read stay unset.
struct ProcessSample {
  std::optional<double> cpu_seconds;
  std::optional<double> resident_bytes;
  std::optional<double> virtual_bytes;
  std::optional<double> open_fds;
  std::optional<double> max_fds;
};

std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The fields of /proc/self/stat after the command name, from field 3 ("state") on.
std::vector<std::string> ProcStatFields() {
  const std::string stat = ReadSmallFile("/proc/self/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream in(stat.substr(paren + 1));
  std::vector<std::string> fields;
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

ProcessSample ReadProcess() {
  ProcessSample s;
  const auto fields = ProcStatFields();
  // proc(5): utime (14), stime (15) in clock ticks; vsize (23) in bytes; rss (24) in pages.
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kVsize = 23 - 3, kRss = 24 - 3;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (fields.size() > kRss && ticks > 0 && page > 0) {
    try {
      s.cpu_seconds = static_cast<double>(std::stoull(fields[kUtime]) + std::stoull(fields[kStime])) /
                      static_cast<double>(ticks);
      s.virtual_bytes = static_cast<double>(std::stoull(fields[kVsize]));
      s.resident_bytes = static_cast<double>(std::stoull(fields[kRss])) * static_cast<double>(page);
    } catch (const std::exception&) {
      s = ProcessSample{};
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    s.open_fds = n - 1;  // not the descriptor that lists them
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    s.max_fds = static_cast<double>(limit.rlim_cur);
  }
  return s;
}

// Seconds since the epoch at which this process started: boot time (/proc/stat btime) plus the
// process's start (/proc/self/stat field 22, clock ticks after boot). Falls back to now.
double ProcessStartTime() {
  const auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::istringstream stat(ReadSmallFile("/proc/stat"));
  std::string line;
  double btime = -1;
  while (std::getline(stat, line)) {
    if (line.rfind("btime ", 0) == 0) {
      btime = std::strtod(line.c_str() + 6, nullptr);
      break;
    }
  }
  const auto fields = ProcStatFields();
  constexpr size_t kStartTime = 22 - 3;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  if (btime < 0 || fields.size() <= kStartTime || ticks <= 0) return now;
  return btime + std::strtod(fields[kStartTime].c_str(), nullptr) / static_cast<double>(ticks);
}

}  // namespace

struct Metrics::Impl final : api::http::RequestGuard {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<Collector> collector;
  std::unique_ptr<api::http::HttpServer> server;
  // The guard the node sets once its authenticator exists (null with security off). Until then
  // a guarded server answers 503: /metrics is never open for a moment at start.
  bool guarded = false;
  std::atomic<api::http::RequestGuard*> guard{nullptr};

  // Raft (pushed by the loop).
  prometheus::Gauge* term = nullptr;
  std::array<prometheus::Gauge*, 4> role{};
  prometheus::Gauge* is_leader = nullptr;
  prometheus::Gauge* leader_id = nullptr;
  prometheus::Counter* leader_changes = nullptr;
  prometheus::Counter* incarnation_refusals = nullptr;
  prometheus::Gauge* commit = nullptr;
  prometheus::Gauge* applied = nullptr;
  prometheus::Histogram* proposal = nullptr;
  prometheus::Histogram* fsync = nullptr;

  // HTTP (pushed by the server's workers).
  struct HttpSeries {
    prometheus::Counter* requests = nullptr;
    prometheus::Histogram* duration = nullptr;
    prometheus::Counter* request_bytes = nullptr;
    prometheus::Counter* response_bytes = nullptr;
  };
  prometheus::Family<prometheus::Counter>* http_requests = nullptr;
  prometheus::Family<prometheus::Histogram>* http_duration = nullptr;
  prometheus::Family<prometheus::Counter>* http_request_bytes = nullptr;
  prometheus::Family<prometheus::Counter>* http_response_bytes = nullptr;
  prometheus::Counter* upload_bytes = nullptr;
  prometheus::Counter* stream_bytes = nullptr;
  std::mutex http_mu;
  // Keyed by route, method and code: bounded, since routes are patterns and methods normalised.
  std::unordered_map<std::string, HttpSeries> http_series;  // guarded by http_mu

  std::mutex tls_mu;
  prometheus::Gauge* tls_not_after = nullptr;  // guarded by tls_mu; null until first set

  // Pulled on scrape; everything below is guarded by collect_mu.
  std::mutex collect_mu;
  prometheus::Gauge* process_resident = nullptr;
  prometheus::Gauge* process_virtual = nullptr;
  prometheus::Gauge* process_open_fds = nullptr;
  prometheus::Gauge* process_max_fds = nullptr;
  prometheus::Gauge* process_start = nullptr;
  CounterFeed<double> process_cpu;
  prometheus::Family<prometheus::Counter>* collect_errors = nullptr;

  bool data_plane_registered = false;
  std::optional<DataPlaneSources> sources;
  prometheus::Gauge* under_replicated = nullptr;
  prometheus::Gauge* unavailable = nullptr;
  prometheus::Gauge* repair_queue = nullptr;
  CounterFeed<uint64_t> repair_passes;
  CounterFeed<uint64_t> copies_made;
  CounterFeed<uint64_t> copies_trimmed;
  CounterFeed<uint64_t> copy_failures;
  CounterFeed<uint64_t> bytes_copied;
  prometheus::Gauge* storage_files = nullptr;
  prometheus::Gauge* storage_bytes = nullptr;
  prometheus::Gauge* storage_free = nullptr;
  prometheus::Gauge* storage_total = nullptr;
  prometheus::Gauge* storage_reserved = nullptr;
  prometheus::Gauge* storage_sealed = nullptr;
  prometheus::Gauge* storage_reseal_pending = nullptr;
  CounterFeed<uint64_t> storage_reseals;
  prometheus::Family<prometheus::Gauge>* peer_up_family = nullptr;
  std::map<NodeId, prometheus::Gauge*> peer_up;
  prometheus::Gauge* catalog_songs = nullptr;
  prometheus::Gauge* catalog_bytes = nullptr;
  prometheus::Gauge* catalog_replicas_healthy = nullptr;
  prometheus::Gauge* catalog_replicas_other = nullptr;
  prometheus::Gauge* replication_factor = nullptr;
  CounterFeed<uint64_t> linearizable_reads;
  CounterFeed<uint64_t> read_rounds;
  CounterFeed<uint64_t> read_failures;

  const api::http::HttpServer* http_server = nullptr;  // not owned; null: not attached
  CounterFeed<uint64_t> http_accepted;
  CounterFeed<uint64_t> http_rejected;
  CounterFeed<uint64_t> tls_handshake_failures;
  prometheus::Gauge* http_open = nullptr;

  std::optional<api::http::Response> Admit(api::http::Request& request,
                                           std::optional<std::string_view> pattern) override;

  void RegisterDataPlane();
  // Must hold collect_mu.
  void Refresh();
  void RefreshDataPlane(const DataPlaneSources& s);
};

// What a scrape collects: the registry, after the pulled series are refreshed.
class Metrics::Collector final : public prometheus::Collectable {
 public:
  explicit Collector(Impl* impl) : impl_(impl) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    {
      std::lock_guard lock(impl_->collect_mu);
      impl_->Refresh();
    }
    return impl_->registry->Collect();
  }

 private:
  Impl* impl_;
};

namespace {
prometheus::Gauge* AddGauge(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter* AddCounter(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
}  // namespace

Result<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen, const BuildInfo& build,
                                                bool guarded) {
  auto impl = std::make_unique<Impl>();
  auto& r = *impl->registry;
  prometheus::BuildGauge()
      .Name("dispotify_build_info")
      .Help("Always 1; the labels say which version, cluster and node this process is")
      .Register(r)
      .Add({{"version", build.version},
            {"cluster_id", build.cluster_id},
            {"node_id", std::to_string(build.node_id.value())}})
      .Set(1);
  impl->term = AddGauge(r, "dispotify_raft_term", "Current Raft term");
  auto& role = prometheus::BuildGauge()
                   .Name("dispotify_raft_role")
                   .Help("1 for the role this node has now, 0 for the others")
                   .Register(r);
  for (size_t i = 0; i < kRoles.size(); ++i) impl->role[i] = &role.Add({{"role", RoleLabel(kRoles[i])}});
  impl->is_leader = AddGauge(r, "dispotify_raft_is_leader", "1 when this node leads");
  impl->leader_id = AddGauge(r, "dispotify_raft_leader_id", "Id of the leader this node knows (0: none)");
  impl->leader_changes =
      AddCounter(r, "dispotify_raft_leader_changes_total", "Times the known leader changed");
  impl->incarnation_refusals = AddCounter(
      r, "dispotify_raft_incarnation_refusals_total",
      "Raft messages refused because the sender's incarnation (node_uuid) is not the membership's");
  impl->commit = AddGauge(r, "dispotify_raft_commit_index", "Highest log index known committed");
  impl->applied =
      AddGauge(r, "dispotify_raft_applied_index", "Highest log index applied to the state machine");
  impl->proposal = &prometheus::BuildHistogram()
                        .Name("dispotify_raft_proposal_duration_seconds")
                        .Help("From proposal to applied (or failed)")
                        .Register(r)
                        .Add({}, LatencyBuckets());
  impl->fsync = &prometheus::BuildHistogram()
                     .Name("dispotify_raft_fsync_duration_seconds")
                     .Help("Durations of log syncs and hard-state saves")
                     .Register(r)
                     .Add({}, LatencyBuckets());

  impl->http_requests = &prometheus::BuildCounter()
                             .Name("dispotify_http_requests_total")
                             .Help("REST requests answered, by route pattern, method and status code")
                             .Register(r);
  impl->http_duration = &prometheus::BuildHistogram()
                             .Name("dispotify_http_request_duration_seconds")
                             .Help(
                                 "REST request durations, from the first byte of the head to the end of "
                                 "the response")
                             .Register(r);
  impl->http_request_bytes = &prometheus::BuildCounter()
                                  .Name("dispotify_http_request_bytes_total")
                                  .Help("Request body bytes read by REST handlers, by route pattern")
                                  .Register(r);
  impl->http_response_bytes = &prometheus::BuildCounter()
                                   .Name("dispotify_http_response_bytes_total")
                                   .Help("Response body bytes written by the REST server, by route pattern")
                                   .Register(r);
  impl->upload_bytes = AddCounter(r, "dispotify_upload_bytes_total",
                                  "Request body bytes read by POST /music/upload (whatever the outcome)");
  impl->stream_bytes =
      AddCounter(r, "dispotify_stream_bytes_total",
                 "Audio bytes sent in 2xx answers of GET /music/stream/{file_id} (local or proxied)");

  impl->process_resident = AddGauge(r, "process_resident_memory_bytes", "Resident memory size in bytes");
  impl->process_virtual = AddGauge(r, "process_virtual_memory_bytes", "Virtual memory size in bytes");
  impl->process_open_fds = AddGauge(r, "process_open_fds", "Number of open file descriptors");
  impl->process_max_fds = AddGauge(r, "process_max_fds", "Limit on open file descriptors (RLIMIT_NOFILE)");
  impl->process_start = AddGauge(r, "process_start_time_seconds",
                                 "Start time of the process since the "
                                 "Unix epoch in seconds");
  impl->process_start->Set(ProcessStartTime());
  impl->process_cpu.counter =
      AddCounter(r, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds");
  impl->collect_errors = &prometheus::BuildCounter()
                              .Name("dispotify_metrics_collect_errors_total")
                              .Help(
                                  "Scrape-time reads of a source that failed (its series kept their "
                                  "previous values)")
                              .Register(r);

  impl->collector = std::make_shared<Collector>(impl.get());
  impl->guarded = guarded;

  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  if (colon != std::string::npos) {
    const std::string digits = listen.substr(colon + 1);
    if (!digits.empty() && digits.size() <= 5 && digits.find_first_not_of("0123456789") == std::string::npos)
      port = std::stoi(digits);
  }
  if (host.empty() || port < 0 || port > 65535)
    return Status::InvalidArgument("metrics address must be HOST:PORT, got '" + listen + "'");

  api::http::Router router;
  Impl* raw = impl.get();
  router.Get("/metrics", [raw](api::http::Request&, api::http::BodyReader&) {
    std::vector<prometheus::MetricFamily> families = raw->collector->Collect();
    return api::http::Response::Text(200, prometheus::TextSerializer().Serialize(families),
                                     "text/plain; version=0.0.4; charset=utf-8");
  });
  api::http::ServerOptions options;
  options.address = host;
  options.port = static_cast<uint16_t>(port);
  options.worker_threads = 2;  // scrapes are rare; two so a slow one does not block a probe
  options.max_connections = 64;
  options.header_timeout = std::chrono::seconds(10);
  options.guard = raw;
  impl->server = std::make_unique<api::http::HttpServer>(std::move(options), std::move(router));
  if (Status st = impl->server->Start(); !st.ok())
    return Status::Unavailable("cannot serve metrics on " + listen + ": " + st.message());
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

std::optional<api::http::Response> Metrics::Impl::Admit(api::http::Request& request,
                                                        std::optional<std::string_view> pattern) {
  if (!guarded) return std::nullopt;
  api::http::RequestGuard* g = guard.load(std::memory_order_acquire);
  if (g == nullptr) return api::http::JsonError(503, "starting", "security is on and not ready yet");
  // The REST API's own rules apply: /metrics is a route of the policy table (permission metrics).
  return g->Admit(request, pattern);
}

void Metrics::SetGuard(api::http::RequestGuard* guard) {
  impl_->guard.store(guard, std::memory_order_release);
}

void Metrics::StopServing() {
  impl_->server->Stop(std::chrono::milliseconds(500));
}

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Metrics::~Metrics() {
  // The server's threads call the collector, which uses the rest of Impl: they stop first.
  impl_->server->Stop(std::chrono::milliseconds(500));
  impl_->server.reset();
}

int Metrics::port() const {
  return impl_->server->port();
}

void Metrics::Impl::RegisterDataPlane() {
  auto& r = *registry;
  under_replicated = AddGauge(r, "dispotify_replication_under_replicated_files",
                              "Songs below the replication factor in healthy copies (leader's last full "
                              "walk; 0 on other nodes)");
  unavailable = AddGauge(r, "dispotify_replication_unavailable_files",
                         "Songs with no healthy copy on an alive node (leader's last full walk; 0 on "
                         "other nodes)");
  repair_queue = AddGauge(r, "dispotify_replication_repair_queue",
                          "Repair tasks waiting or running (leader; 0 elsewhere)");
  repair_passes.counter =
      AddCounter(r, "dispotify_replication_repair_passes_total", "Repair passes this node ran while leading");
  copies_made.counter = AddCounter(r, "dispotify_replication_copies_made_total",
                                   "Copies made by repair, ordered by this node while leading");
  copies_trimmed.counter = AddCounter(r, "dispotify_replication_copies_trimmed_total",
                                      "Surplus copies removed by repair, ordered by this node while leading");
  copy_failures.counter = AddCounter(r, "dispotify_replication_copy_failures_total",
                                     "Repair copies that failed, ordered by this node while leading");
  bytes_copied.counter = AddCounter(r, "dispotify_replication_bytes_copied_total",
                                    "Bytes of the copies made by repair, ordered by this node while leading");
  storage_files = AddGauge(r, "dispotify_storage_files", "Audio files stored on this node");
  storage_bytes =
      AddGauge(r, "dispotify_storage_bytes", "Content bytes of the audio files stored on this node");
  storage_free = AddGauge(r, "dispotify_storage_free_bytes",
                          "Bytes available to the node on the blob store's file system");
  storage_total =
      AddGauge(r, "dispotify_storage_total_bytes", "Size of the blob store's file system in bytes");
  storage_reserved = AddGauge(r, "dispotify_storage_reserved_bytes",
                              "Free bytes the blob store never writes into (min_free_mib)");
  storage_sealed = AddGauge(r, "dispotify_storage_sealed_files",
                            "Audio files encrypted at rest under the current key (last inventory pass)");
  storage_reseal_pending =
      AddGauge(r, "dispotify_storage_reseal_pending_files",
               "Audio files still plaintext or under an older key (last inventory pass)");
  storage_reseals.counter = AddCounter(r, "dispotify_storage_reseals_total",
                                       "Audio files re-encrypted under the current key by this node");
  peer_up_family = &prometheus::BuildGauge()
                        .Name("dispotify_peer_up")
                        .Help("1 when the peer answers its health checks, by peer node id")
                        .Register(r);
  catalog_songs = AddGauge(r, "dispotify_catalog_songs", "Songs in the catalog (as applied on this node)");
  catalog_bytes = AddGauge(r, "dispotify_catalog_bytes", "Sum of the sizes of the catalog's songs in bytes");
  catalog_replicas_healthy = AddGauge(r, "dispotify_catalog_replicas_healthy",
                                      "Replica records of the catalog in the healthy state");
  catalog_replicas_other = AddGauge(r, "dispotify_catalog_replicas_unhealthy",
                                    "Replica records of the catalog pending, corrupt or missing");
  replication_factor =
      AddGauge(r, "dispotify_catalog_replication_factor", "Copies the cluster keeps of every song");
  linearizable_reads.counter =
      AddCounter(r, "dispotify_catalog_linearizable_reads_total",
                 "Catalog reads that confirmed the latest state with the leader first");
  read_rounds.counter = AddCounter(r, "dispotify_catalog_read_index_rounds_total",
                                   "Read-index rounds this node ran for them (concurrent reads share one)");
  read_failures.counter = AddCounter(r, "dispotify_catalog_read_unavailable_total",
                                     "Linearizable reads that could not confirm the state in time (503)");
  data_plane_registered = true;
}

void Metrics::Impl::Refresh() {
  const ProcessSample p = ReadProcess();
  if (p.cpu_seconds) process_cpu.Update(*p.cpu_seconds);
  if (p.resident_bytes) process_resident->Set(*p.resident_bytes);
  if (p.virtual_bytes) process_virtual->Set(*p.virtual_bytes);
  if (p.open_fds) process_open_fds->Set(*p.open_fds);
  if (p.max_fds) process_max_fds->Set(*p.max_fds);
  if (sources) RefreshDataPlane(*sources);
  if (http_server != nullptr) {
    const api::http::ServerStats st = http_server->stats();
    http_accepted.Update(st.connections_accepted);
    http_rejected.Update(st.connections_rejected);
    tls_handshake_failures.Update(st.tls_handshake_failures);
    http_open->Set(static_cast<double>(st.open_connections));
  }
}

void Metrics::Impl::RefreshDataPlane(const DataPlaneSources& s) {
  if (s.blobs != nullptr) {
    auto st = s.blobs->Stats();
    if (st.ok()) {
      storage_files->Set(static_cast<double>(st->files));
      storage_bytes->Set(static_cast<double>(st->bytes));
      storage_free->Set(static_cast<double>(st->free_bytes));
      storage_total->Set(static_cast<double>(st->total_bytes));
      storage_reserved->Set(static_cast<double>(st->reserved_bytes));
      storage_sealed->Set(static_cast<double>(st->sealed_files));
      storage_reseal_pending->Set(static_cast<double>(st->reseal_pending_files));
      storage_reseals.Update(st->reseals);
    } else {
      collect_errors->Add({{"source", "blob_store"}}).Increment();
    }
  }
  if (s.catalog != nullptr) {
    auto st = s.catalog->Stats();
    if (st.ok()) {
      catalog_songs->Set(static_cast<double>(st->songs));
      catalog_bytes->Set(static_cast<double>(st->bytes));
      catalog_replicas_healthy->Set(static_cast<double>(st->replicas_healthy));
      catalog_replicas_other->Set(static_cast<double>(st->replicas_other));
    } else {
      collect_errors->Add({{"source", "catalog"}}).Increment();
    }
  }
  if (s.replication_factor) replication_factor->Set(static_cast<double>(s.replication_factor()));
  if (s.reads) {
    const catalog::ReadStats rs = s.reads();
    linearizable_reads.Update(rs.reads);
    read_rounds.Update(rs.rounds);
    read_failures.Update(rs.failures);
  }
  if (s.repair != nullptr) {
    const replication::RepairStats rs = s.repair->Stats();
    const bool leader = s.is_leader && s.is_leader();
    under_replicated->Set(leader ? static_cast<double>(rs.under_replicated) : 0);
    unavailable->Set(leader ? static_cast<double>(rs.unavailable) : 0);
    repair_queue->Set(leader ? static_cast<double>(rs.queued) : 0);
    repair_passes.Update(rs.passes);
    copies_made.Update(rs.copies_made);
    copies_trimmed.Update(rs.copies_trimmed);
    copy_failures.Update(rs.copy_failures);
    bytes_copied.Update(rs.bytes_copied);
  }
  if (s.peers != nullptr) {
    const auto peers = s.peers->Peers();
    for (auto it = peer_up.begin(); it != peer_up.end();) {
      if (peers.contains(it->first)) {
        ++it;
      } else {
        peer_up_family->Remove(it->second);  // left the configuration
        it = peer_up.erase(it);
      }
    }
    for (const auto& [id, stats] : peers) {
      auto it = peer_up.find(id);
      if (it == peer_up.end()) {
        it = peer_up.emplace(id, &peer_up_family->Add({{"peer", std::to_string(id.value())}})).first;
      }
      it->second->Set(stats.alive ? 1 : 0);
    }
  }
}

void Metrics::AttachDataPlane(DataPlaneSources sources) {
  std::lock_guard lock(impl_->collect_mu);
  if (!impl_->data_plane_registered) impl_->RegisterDataPlane();
  impl_->sources = std::move(sources);
}

void Metrics::DetachDataPlane() {
  std::lock_guard lock(impl_->collect_mu);
  impl_->sources.reset();
  impl_->http_server = nullptr;
}

void Metrics::AttachHttpServer(const api::http::HttpServer* server) {
  std::lock_guard lock(impl_->collect_mu);
  if (impl_->http_open == nullptr) {
    prometheus::Registry& r = *impl_->registry;
    impl_->http_accepted.counter =
        AddCounter(r, "dispotify_http_connections_accepted_total", "Connections the REST port accepted");
    impl_->http_rejected.counter =
        AddCounter(r, "dispotify_http_connections_rejected_total",
                   "Connections refused at max_connections (503, or closed under TLS)");
    impl_->tls_handshake_failures.counter =
        AddCounter(r, "dispotify_http_tls_handshake_failures_total",
                   "HTTPS handshakes that failed or timed out (plaintext HTTP sent to the TLS port too)");
    impl_->http_open = AddGauge(r, "dispotify_http_open_connections", "Connections open on the REST port");
  }
  impl_->http_server = server;
}

std::string Metrics::Text() {
  std::vector<prometheus::MetricFamily> families = impl_->collector->Collect();
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::OnState(consensus::Role role, Term term, NodeId leader, LogIndex commit, LogIndex applied) {
  impl_->term->Set(static_cast<double>(term.value()));
  for (size_t i = 0; i < kRoles.size(); ++i) impl_->role[i]->Set(kRoles[i] == role ? 1 : 0);
  impl_->is_leader->Set(role == consensus::Role::kLeader ? 1 : 0);
  impl_->leader_id->Set(static_cast<double>(leader.value()));
  impl_->commit->Set(static_cast<double>(commit.value()));
  impl_->applied->Set(static_cast<double>(applied.value()));
}

void Metrics::SetTlsCertNotAfter(double seconds_since_epoch) {
  std::lock_guard lock(impl_->tls_mu);
  if (!impl_->tls_not_after) {
    impl_->tls_not_after = AddGauge(*impl_->registry, "dispotify_tls_cert_not_after_seconds",
                                    "notAfter of the certificate this node presents on gRPC (mTLS), in "
                                    "seconds since the epoch");
  }
  impl_->tls_not_after->Set(seconds_since_epoch);
}

void Metrics::OnLeaderChange() {
  impl_->leader_changes->Increment();
}
void Metrics::OnIncarnationRefusals(uint64_t messages) {
  impl_->incarnation_refusals->Increment(static_cast<double>(messages));
}
void Metrics::ObserveFsync(double seconds) {
  impl_->fsync->Observe(seconds);
}
void Metrics::ObserveProposal(double seconds) {
  impl_->proposal->Observe(seconds);
}

void Metrics::OnRequest(const api::http::RequestRecord& record) {
  const std::string route(record.route);
  const std::string method(MethodLabel(record.method));
  const std::string code = std::to_string(record.status);
  Impl::HttpSeries series;
  {
    std::lock_guard lock(impl_->http_mu);
    std::string key = route;
    key += '\n';
    key += method;
    key += '\n';
    key += code;
    auto it = impl_->http_series.find(key);
    if (it == impl_->http_series.end()) {
      Impl::HttpSeries s;
      s.requests = &impl_->http_requests->Add({{"route", route}, {"method", method}, {"code", code}});
      s.duration = &impl_->http_duration->Add({{"route", route}, {"method", method}}, HttpBuckets());
      s.request_bytes = &impl_->http_request_bytes->Add({{"route", route}});
      s.response_bytes = &impl_->http_response_bytes->Add({{"route", route}});
      it = impl_->http_series.emplace(std::move(key), s).first;
    }
    series = it->second;
  }
  series.requests->Increment();
  series.duration->Observe(record.seconds);
  series.request_bytes->Increment(static_cast<double>(record.request_body_bytes));
  series.response_bytes->Increment(static_cast<double>(record.response_body_bytes));
  if (record.route == kUploadRoute)
    impl_->upload_bytes->Increment(static_cast<double>(record.request_body_bytes));
  // Audio only: an error's JSON body is not streamed music.
  if (record.route == kStreamRoute && record.status >= 200 && record.status < 300) {
    impl_->stream_bytes->Increment(static_cast<double>(record.response_body_bytes));
  }
}

}  // namespace dispotify::server
