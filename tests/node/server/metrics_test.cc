// The node's Prometheus metrics: the HTTP observer feeds the right series (route label = the route
// pattern, never the raw path), the data-plane and process series are read on scrape, the exposer
// serves it all, and promtool accepts the exposition.

#include "node/server/metrics.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "common/file_system.h"
#include "node/api/http/http_server.h"
#include "node/api/http/router.h"
#include "node/catalog/metadata_store.h"
#include "node/replication/blob_store.h"
#include "node/replication/peer_client.h"
#include "tests/mocks/temp_dir.h"
#include "tests/node/api/http/test_client.h"

namespace dispotify::server {
namespace {

using api::http::RequestRecord;
using namespace std::chrono_literals;

// A sample line split into its series ("name{a=\"x\",b=\"y\"}" with the labels sorted by name,
// whatever order the exposition used) and its value.
std::pair<std::string, double> ParseSample(const std::string& line) {
  const auto brace = line.find('{');
  const auto space = line.rfind(' ');
  if (brace == std::string::npos || brace > space)
    return {line.substr(0, space), std::strtod(line.c_str() + space + 1, nullptr)};
  const auto close = line.rfind('}');
  std::map<std::string, std::string> labels;
  size_t pos = brace + 1;
  while (pos < close) {
    const auto eq = line.find('=', pos);
    const auto end = line.find('"', eq + 2);  // label values here hold no escaped quotes
    labels[line.substr(pos, eq - pos)] = line.substr(eq + 1, end - eq);
    pos = end + 2;
  }
  std::string series = line.substr(0, brace) + "{";
  for (const auto& [name, value] : labels) series += (series.back() == '{' ? "" : ",") + name + "=" + value;
  return {series + "}", std::strtod(line.c_str() + close + 2, nullptr)};
}

// The value of `series` (name plus labels sorted by name, as ParseSample prints them); nullopt when
// absent.
std::optional<double> Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto [name, value] = ParseSample(line);
    if (name == series) return value;
  }
  return std::nullopt;
}

bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::unique_ptr<Metrics> StartMetrics() {
  auto m = Metrics::Start("127.0.0.1:0", {"0.1.0-test", "unit", NodeId(7)});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

RequestRecord Record(std::string_view route, std::string_view method, int status, double seconds, uint64_t in,
                     uint64_t out) {
  RequestRecord r;
  r.route = route;
  r.method = method;
  r.status = status;
  r.seconds = seconds;
  r.request_body_bytes = in;
  r.response_body_bytes = out;
  return r;
}

// The dashboard and the alerts select a cluster and a node through this one series per target.
TEST(MetricsTest, BuildInfoNamesTheVersionClusterAndNode) {
  auto m = Metrics::Start("127.0.0.1:0", {"1.2.3", "blue-cluster", NodeId(42)});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const std::string t = (*m)->Text();
  EXPECT_EQ(Sample(t, "dispotify_build_info{cluster_id=\"blue-cluster\",node_id=\"42\",version=\"1.2.3\"}"),
            1);
  EXPECT_NE(t.find("# TYPE dispotify_build_info gauge"), std::string::npos);
  // Exactly one series of the family: nothing else may carry another identity.
  size_t series = 0;
  for (size_t pos = t.find("\ndispotify_build_info{"); pos != std::string::npos;
       pos = t.find("\ndispotify_build_info{", pos + 1)) {
    ++series;
  }
  EXPECT_EQ(series, 1u);
  // Served as scraped, not only serialised in process.
  api::http::testing::TestClient served(static_cast<uint16_t>((*m)->port()));
  ASSERT_TRUE(served.connected());
  ASSERT_TRUE(served.Send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  auto r = served.ReadResponse(false);
  ASSERT_TRUE(r);
  EXPECT_EQ(
      Sample(r->body, "dispotify_build_info{cluster_id=\"blue-cluster\",node_id=\"42\",version=\"1.2.3\"}"),
      1);
}

TEST(MetricsTest, ObserverFeedsTheSeriesOfItsRouteMethodAndCode) {
  auto m = StartMetrics();
  ASSERT_TRUE(m);
  m->OnRequest(Record("/music/stream/{file_id}", "GET", 200, 0.02, 0, 1000));
  m->OnRequest(Record("/music/stream/{file_id}", "GET", 200, 3.0, 0, 500));
  m->OnRequest(Record("/music/stream/{file_id}", "HEAD", 200, 0.001, 0, 0));
  m->OnRequest(Record("/music/stream/{file_id}", "GET", 404, 0.001, 0, 72));  // not audio
  m->OnRequest(Record("/music/upload", "POST", 201, 0.5, 4096, 300));
  m->OnRequest(Record(RequestRecord::kUnmatchedRoute, "GET", 404, 0.0001, 0, 80));
  m->OnRequest(Record(RequestRecord::kUnmatchedRoute, "BREW", 404, 0.0001, 0, 80));
  const std::string t = m->Text();

  const std::string stream = "route=\"/music/stream/{file_id}\"";
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"200\",method=\"GET\"," + stream + "}"), 2);
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"200\",method=\"HEAD\"," + stream + "}"), 1);
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"201\",method=\"POST\",route=\"/music/upload\"}"),
            1);
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"}"), 1);
  // Methods outside the known set share one label value.
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"404\",method=\"other\",route=\"unmatched\"}"), 1);
  EXPECT_EQ(t.find("BREW"), std::string::npos);

  // The duration is by route and method: the 404 of the stream route is in it.
  const std::string get_stream = "method=\"GET\"," + stream;
  EXPECT_EQ(Sample(t, "dispotify_http_request_duration_seconds_count{" + get_stream + "}"), 3);
  EXPECT_NEAR(*Sample(t, "dispotify_http_request_duration_seconds_sum{" + get_stream + "}"), 3.021, 1e-9);
  EXPECT_EQ(Sample(t, "dispotify_http_request_duration_seconds_bucket{le=\"0.025\"," + get_stream + "}"), 2);
  EXPECT_EQ(Sample(t, "dispotify_http_request_duration_seconds_bucket{le=\"5\"," + get_stream + "}"), 3);
  EXPECT_EQ(Sample(t, "dispotify_http_request_duration_seconds_bucket{le=\"+Inf\"," + get_stream + "}"), 3);

  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"404\",method=\"GET\"," + stream + "}"), 1);
  EXPECT_EQ(Sample(t, "dispotify_http_response_bytes_total{" + stream + "}"), 1572);
  EXPECT_EQ(Sample(t, "dispotify_http_request_bytes_total{route=\"/music/upload\"}"), 4096);
  EXPECT_EQ(Sample(t, "dispotify_http_response_bytes_total{route=\"/music/upload\"}"), 300);
  EXPECT_EQ(Sample(t, "dispotify_upload_bytes_total"), 4096);
  EXPECT_EQ(Sample(t, "dispotify_stream_bytes_total"), 1500);
}

// The real server reports the matched pattern, the method, the code and the bytes moved.
TEST(MetricsTest, HttpServerReportsRoutePatternsNotPaths) {
  auto m = StartMetrics();
  ASSERT_TRUE(m);
  api::http::Router router;
  router.Get("/music/stream/{file_id}", [](api::http::Request&, api::http::BodyReader&) {
    return api::http::Response::Text(200, "0123456789");
  });
  router.Post("/music/upload", [](api::http::Request&, api::http::BodyReader& body) {
    char buf[1024];
    size_t total = 0;
    for (;;) {
      auto n = body.Read(buf, sizeof(buf));
      if (!n.ok() || *n == 0) break;
      total += *n;
    }
    return api::http::Response::Text(201, std::to_string(total));
  });
  api::http::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.worker_threads = 2;
  options.observer = m.get();
  api::http::HttpServer server(options, std::move(router));
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(m->Text().find("dispotify_http_connections_accepted_total"), std::string::npos)
      << "the connection series exist once a server is attached";
  m->AttachHttpServer(&server);

  api::http::testing::TestClient client(server.port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("GET /music/stream/Hey-Jude.mp3 HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r1 = client.ReadResponse();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, 200);
  ASSERT_TRUE(client.Send("GET /music/stream/Let%20It%20Be.mp3?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(client.ReadResponse());
  const std::string body(5000, 'a');
  ASSERT_TRUE(client.Send("POST /music/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + body));
  auto r3 = client.ReadResponse();
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->status, 201);
  ASSERT_TRUE(client.Send("GET /no/such/path HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r4 = client.ReadResponse();
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->status, 404);
  ASSERT_TRUE(client.Send("DELETE /music/stream/x HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto r5 = client.ReadResponse();
  ASSERT_TRUE(r5);
  EXPECT_EQ(r5->status, 405);

  const std::string stream = "route=\"/music/stream/{file_id}\"";
  std::string t;
  // The observer runs after the response is written: the client may be faster.
  ASSERT_TRUE(Eventually([&] {
    t = m->Text();
    return Sample(t, "dispotify_http_requests_total{code=\"405\",method=\"DELETE\"," + stream + "}") == 1;
  })) << t;
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"200\",method=\"GET\"," + stream + "}"), 2);
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"201\",method=\"POST\",route=\"/music/upload\"}"),
            1);
  // A 405 carries the pattern that matched the path.
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"405\",method=\"DELETE\"," + stream + "}"), 1);
  EXPECT_GT(*Sample(t, "dispotify_http_response_bytes_total{" + stream + "}"), 20);
  EXPECT_EQ(Sample(t, "dispotify_stream_bytes_total"), 20);
  // One keep-alive connection for all five requests, still open; no TLS, so no handshake failed.
  EXPECT_EQ(Sample(t, "dispotify_http_connections_accepted_total"), 1);
  EXPECT_EQ(Sample(t, "dispotify_http_connections_rejected_total"), 0);
  EXPECT_EQ(Sample(t, "dispotify_http_open_connections"), 1);
  EXPECT_EQ(Sample(t, "dispotify_http_tls_handshake_failures_total"), 0);
  EXPECT_EQ(Sample(t, "dispotify_http_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"}"), 1);
  EXPECT_EQ(Sample(t, "dispotify_http_request_bytes_total{route=\"/music/upload\"}"), 5000);
  EXPECT_EQ(Sample(t, "dispotify_upload_bytes_total"), 5000);
  EXPECT_EQ(Sample(t, "dispotify_http_response_bytes_total{route=\"/music/upload\"}"), 4);
  EXPECT_GT(*Sample(t, "dispotify_http_request_duration_seconds_sum{method=\"GET\"," + stream + "}"), 0);
  // No raw path reaches a label.
  EXPECT_EQ(t.find("Hey-Jude"), std::string::npos);
  EXPECT_EQ(t.find("Let"), std::string::npos);
  EXPECT_EQ(t.find("/no/such/path"), std::string::npos);
  m->DetachDataPlane();  // the server goes before the metrics
  server.Stop(1s);
}

TEST(MetricsTest, DataPlaneSeriesAreReadOnScrape) {
  mocks::TempDir tmp;
  auto blobs = replication::OpenBlobStore(DefaultFileSystem(), tmp.Sub("blobs"),
                                          replication::BlobStoreOptions{.reserved_bytes = 1 << 20});
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  auto store = catalog::OpenSqliteStore(tmp.Sub("catalog.db"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  replication::PeerClientOptions popts;
  popts.self = NodeId(1);
  popts.cluster_id = "metrics-test";
  replication::PeerClient peers(popts, blobs->get());
  peers.SetPeers({{NodeId(1), "127.0.0.1:1"}, {NodeId(2), "127.0.0.1:2"}, {NodeId(3), "127.0.0.1:3"}});

  auto m = StartMetrics();
  ASSERT_TRUE(m);
  // Before the data plane is attached (KV mode), none of its series exists.
  EXPECT_EQ(m->Text().find("dispotify_storage_files"), std::string::npos);

  DataPlaneSources sources;
  sources.blobs = blobs->get();
  sources.peers = &peers;
  sources.catalog = store->get();
  sources.is_leader = [] { return false; };
  sources.replication_factor = [] { return 2u; };
  m->AttachDataPlane(sources);

  std::string t = m->Text();
  EXPECT_EQ(Sample(t, "dispotify_storage_files"), 0);
  EXPECT_EQ(Sample(t, "dispotify_storage_bytes"), 0);
  EXPECT_GT(*Sample(t, "dispotify_storage_total_bytes"), 0);
  EXPECT_LE(*Sample(t, "dispotify_storage_free_bytes"), *Sample(t, "dispotify_storage_total_bytes"));
  EXPECT_EQ(Sample(t, "dispotify_storage_reserved_bytes"), 1 << 20);
  EXPECT_EQ(Sample(t, "dispotify_catalog_songs"), 0);
  EXPECT_EQ(Sample(t, "dispotify_catalog_replication_factor"), 2);
  // Peers: the others of the address book, never self.
  EXPECT_EQ(Sample(t, "dispotify_peer_up{peer=\"1\"}"), std::nullopt);
  EXPECT_TRUE(Sample(t, "dispotify_peer_up{peer=\"2\"}").has_value());
  EXPECT_TRUE(Sample(t, "dispotify_peer_up{peer=\"3\"}").has_value());
  // No repair manager given: its series exist at 0.
  EXPECT_EQ(Sample(t, "dispotify_replication_under_replicated_files"), 0);
  EXPECT_EQ(Sample(t, "dispotify_replication_copies_made_total"), 0);

  // A stored blob shows up on the next scrape.
  const std::string data(1234, 'x');
  auto w = (*blobs)->Create("Hey-Jude.mp3");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(data).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  // A peer that leaves the configuration loses its series.
  peers.SetPeers({{NodeId(1), "127.0.0.1:1"}, {NodeId(2), "127.0.0.1:2"}});
  t = m->Text();
  EXPECT_EQ(Sample(t, "dispotify_storage_files"), 1);
  EXPECT_EQ(Sample(t, "dispotify_storage_bytes"), 1234);
  EXPECT_TRUE(Sample(t, "dispotify_peer_up{peer=\"2\"}").has_value());
  EXPECT_EQ(Sample(t, "dispotify_peer_up{peer=\"3\"}"), std::nullopt);

  // Detached: the sources are no longer read; the series keep their last values.
  m->DetachDataPlane();
  blobs->reset();
  t = m->Text();
  EXPECT_EQ(Sample(t, "dispotify_storage_files"), 1);
}

TEST(MetricsTest, ProcessSeries) {
  auto m = StartMetrics();
  ASSERT_TRUE(m);
  const std::string t = m->Text();
  EXPECT_GT(*Sample(t, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(*Sample(t, "process_virtual_memory_bytes"), *Sample(t, "process_resident_memory_bytes"));
  EXPECT_GE(*Sample(t, "process_open_fds"), 3);
  EXPECT_GT(*Sample(t, "process_max_fds"), 0);
  EXPECT_GE(*Sample(t, "process_cpu_seconds_total"), 0);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = *Sample(t, "process_start_time_seconds");
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);
  // CPU time is a counter: it never goes down between scrapes.
  volatile double x = 0;
  for (int i = 0; i < 5'000'000; ++i) x = x + 1;
  EXPECT_GE(*Sample(m->Text(), "process_cpu_seconds_total"), *Sample(t, "process_cpu_seconds_total"));
}

TEST(MetricsTest, ExposerServesTheText) {
  auto m = StartMetrics();
  ASSERT_TRUE(m);
  ASSERT_GT(m->port(), 0);
  m->OnState(consensus::Role::kLeader, Term(7), NodeId(2), LogIndex(40), LogIndex(39));
  api::http::testing::TestClient client(static_cast<uint16_t>(m->port()));
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  auto r = client.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Sample(r->body, "dispotify_raft_term"), 7);
  EXPECT_EQ(Sample(r->body, "dispotify_raft_role{role=\"leader\"}"), 1);
  EXPECT_EQ(Sample(r->body, "dispotify_raft_leader_id"), 2);
  EXPECT_TRUE(Sample(r->body, "process_resident_memory_bytes").has_value());
}

// `promtool check metrics` (Debian's prometheus package) lints the exposition: names, types,
// suffixes, help texts.
TEST(MetricsTest, PromtoolAcceptsTheText) {
  if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "/usr/bin/promtool not installed";
  mocks::TempDir tmp;
  auto blobs = replication::OpenBlobStore(DefaultFileSystem(), tmp.Sub("blobs"));
  ASSERT_TRUE(blobs.ok());
  auto m = StartMetrics();
  ASSERT_TRUE(m);
  DataPlaneSources sources;
  sources.blobs = blobs->get();
  m->AttachDataPlane(sources);
  m->OnRequest(Record("/music/stream/{file_id}", "GET", 200, 0.02, 0, 1000));
  m->OnRequest(Record(RequestRecord::kUnmatchedRoute, "GET", 404, 0.0001, 0, 80));
  const std::string path = tmp.Sub("metrics.txt");
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string t = m->Text();
    ASSERT_EQ(std::fwrite(t.data(), 1, t.size(), f), t.size());
    std::fclose(f);
  }
  const std::string out = tmp.Sub("promtool.out");
  const std::string cmd = "/usr/bin/promtool check metrics < " + path + " > " + out + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream msg;
  msg << in.rdbuf();
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "promtool: " << msg.str();
}

}  // namespace
}  // namespace dispotify::server
