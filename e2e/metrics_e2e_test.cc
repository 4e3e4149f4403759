// The Prometheus metrics of real dispotify-node processes: after uploads, streams, errors and a
// replication-factor change driven through the REST API, every node's /metrics has the expected
// series with plausible values, and `promtool check metrics` accepts every node's exposition.

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "tests/node/api/http/test_client.h"
#include "tests/support/audio_files.h"

namespace dispotify::e2e {
namespace {

using api::http::testing::ClientResponse;
using api::http::testing::TestClient;
using namespace std::chrono_literals;

constexpr const char* kPromtool = "/usr/bin/promtool";

// An exposition parsed into series -> value, the series written "name{a=\"x\",b=\"y\"}" with the
// labels sorted by name (whatever order the exposition used).
using Samples = std::map<std::string, double>;

Samples Parse(const std::string& text) {
  Samples out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto brace = line.find('{');
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    if (brace == std::string::npos || brace > space) {
      out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
      continue;
    }
    const auto close = line.rfind('}');
    std::map<std::string, std::string> labels;
    size_t pos = brace + 1;
    while (pos < close) {
      const auto eq = line.find('=', pos);
      const auto end = line.find('"', eq + 2);  // our label values hold no escaped quotes
      labels[line.substr(pos, eq - pos)] = line.substr(eq + 1, end - eq);
      pos = end + 2;
    }
    std::string series = line.substr(0, brace) + "{";
    for (const auto& [name, value] : labels) series += (series.back() == '{' ? "" : ",") + name + "=" + value;
    out[series + "}"] = std::strtod(line.c_str() + close + 2, nullptr);
  }
  return out;
}

double Get(const Samples& s, const std::string& series) {
  auto it = s.find(series);
  return it == s.end() ? -1 : it->second;
}

class MetricsE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  std::optional<ClientResponse> Rest(uint64_t node, const std::string& method, const std::string& target,
                                     const std::string& body = "", const std::string& extra_headers = "") {
    return HttpCall(cluster_->spec(node).http_port, method, target, body, extra_headers);
  }

  std::optional<ClientResponse> UploadMultipart(uint64_t node, const std::string& file_name,
                                                const std::string& data, const std::string& title) {
    return HttpUploadMultipart(cluster_->spec(node).http_port, file_name, data, title);
  }

  // The raw exposition of node `id` ("" when it does not answer 200).
  std::string Scrape(uint64_t node) {
    auto r = HttpCall(cluster_->spec(node).metrics_port, "GET", "/metrics");
    return r && r->status == 200 ? r->body : std::string();
  }

  // The sum of `series` over the three nodes.
  double Sum(const std::string& series) {
    double total = 0;
    for (uint64_t n = 1; n <= 3; ++n) total += std::max(0.0, Get(Parse(Scrape(n)), series));
    return total;
  }

  bool SetFactor(uint64_t node, int factor) {
    auto r = Rest(node, "PUT", "/admin/replication", "{\"factor\": " + std::to_string(factor) + "}",
                  "Content-Type: application/json\r\n");
    return r && r->status == 200;
  }

  std::unique_ptr<Cluster> cluster_;
};

// Runs `promtool check metrics` with `text` on its stdin; its exit code and output.
std::pair<int, std::string> Promtool(const std::string& text, const std::string& dir) {
  const std::string out_path = dir + "/promtool.out";
  const std::string cmd = std::string(kPromtool) + " check metrics > " + out_path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "w");
  if (p == nullptr) return {-1, "popen failed"};
  const size_t written = std::fwrite(text.data(), 1, text.size(), p);
  const int status = ::pclose(p);
  std::string out;
  if (FILE* f = std::fopen(out_path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  if (written != text.size()) out += " (short write to promtool)";
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_F(MetricsE2eTest, EveryNodeExportsPlausibleSeriesThatPromtoolAccepts) {
  cluster_ = std::make_unique<Cluster>(3, "metrics");
  Cluster& c = *cluster_;
  c.SetCommonFlags({"--repair-interval-ms", "200", "--scrub-interval-s", "0"});
  c.StartAll();
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 3; ++n) {
    ASSERT_TRUE(Eventually(
        [&] {
          auto r = Rest(n, "GET", "/readyz");
          return r && r->status == 200;
        },
        20s))
        << "node " << n;
  }
  // One copy per song at first, so that raising the factor gives repair copies to make.
  ASSERT_TRUE(SetFactor(1, 1));

  // Real MP3s (uploads read their tags): ~290 KiB and ~200 KiB.
  const std::string a = testing_audio::MakeMp3("Song A", 700);
  const std::string b = testing_audio::MakeMp3("Song B", 480);
  std::optional<ClientResponse> up;
  ASSERT_TRUE(Eventually(
      [&] {
        up = UploadMultipart(2, "Song A.mp3", a, "Song A");
        return up && up->status != 503;
      },
      20s));
  ASSERT_EQ(up->status, 201) << up->body;
  ASSERT_TRUE(Eventually(
      [&] {
        up = UploadMultipart(3, "Song B.mp3", b, "Song B");
        return up && up->status != 503;
      },
      20s));
  ASSERT_EQ(up->status, 201) << up->body;

  // Every node streams both songs (locally or proxied), plus an unknown path and an unknown song.
  for (uint64_t n = 1; n <= 3; ++n) {
    for (const auto& [id, data] : {std::pair{"Song-A.mp3", &a}, std::pair{"Song-B.mp3", &b}}) {
      std::optional<ClientResponse> r;
      ASSERT_TRUE(Eventually(
          [&] {
            r = Rest(n, "GET", std::string("/music/stream/") + id);
            return r && r->status == 200;
          },
          10s))
          << id << " on node " << n;
      EXPECT_EQ(r->body, *data);
    }
  }
  auto missing_path = Rest(1, "GET", "/no/such/path");
  ASSERT_TRUE(missing_path);
  EXPECT_EQ(missing_path->status, 404);
  auto missing_song = Rest(1, "GET", "/music/stream/No-Such-Song.mp3");
  ASSERT_TRUE(missing_song);
  EXPECT_EQ(missing_song->status, 404);

  // Factor 3: repair copies both songs to the two nodes without them.
  ASSERT_TRUE(SetFactor(1, 3));
  ASSERT_TRUE(Eventually(
      [&] {
        for (uint64_t n = 1; n <= 3; ++n) {
          if (Get(Parse(Scrape(n)), "dispotify_storage_files") != 2) return false;
        }
        return true;
      },
      30s));
  // A copy is on the target's disk (storage_files) before repair has recorded it through Raft, and
  // the counters move only once that commit is back: the last copy's may lag the files a little.
  EXPECT_TRUE(Eventually([&] { return Sum("dispotify_replication_copies_made_total") >= 4; }, 10s))
      << Sum("dispotify_replication_copies_made_total");
  EXPECT_TRUE(Eventually(
      [&] {
        return Sum("dispotify_replication_bytes_copied_total") >=
               2.0 * static_cast<double>(a.size() + b.size());
      },
      10s))
      << Sum("dispotify_replication_bytes_copied_total");
  // Factor 2: one copy of each goes.
  ASSERT_TRUE(SetFactor(1, 2));
  EXPECT_TRUE(Eventually([&] { return Sum("dispotify_replication_copies_trimmed_total") >= 2; }, 30s));
  EXPECT_TRUE(Eventually([&] { return Sum("dispotify_storage_files") == 4; }, 30s));

  // The leader's walk sees nothing left to do; the others export 0.
  uint64_t leader = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        leader = 0;
        for (uint64_t n = 1; n <= 3; ++n) {
          Samples s = Parse(Scrape(n));
          if (Get(s, "dispotify_raft_is_leader") == 1 &&
              Get(s, "dispotify_replication_under_replicated_files") == 0 &&
              Get(s, "dispotify_replication_repair_queue") == 0) {
            leader = n;
          }
        }
        return leader != 0;
      },
      20s));
  // Peers are seen up by their health checks.
  ASSERT_TRUE(Eventually(
      [&] {
        for (uint64_t n = 1; n <= 3; ++n) {
          Samples s = Parse(Scrape(n));
          for (uint64_t p = 1; p <= 3; ++p) {
            const std::string series = "dispotify_peer_up{peer=\"" + std::to_string(p) + "\"}";
            if (Get(s, series) != (p == n ? -1 : 1)) return false;  // never self
          }
        }
        return true;
      },
      20s));

  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string upload = "route=\"/music/upload\"";
  const std::string stream = "route=\"/music/stream/{file_id}\"";
  double uploads = 0;
  double upload_bytes = 0;
  for (uint64_t n = 1; n <= 3; ++n) {
    SCOPED_TRACE("node " + std::to_string(n));
    const std::string text = Scrape(n);
    ASSERT_FALSE(text.empty());
    const Samples s = Parse(text);

    // HTTP: each node streamed both songs; the route label is the pattern, never a path.
    EXPECT_GE(Get(s, "dispotify_http_requests_total{code=\"200\",method=\"GET\"," + stream + "}"), 2);
    EXPECT_GE(Get(s, "dispotify_http_request_duration_seconds_count{method=\"GET\"," + stream + "}"), 2);
    EXPECT_GT(Get(s, "dispotify_http_request_duration_seconds_sum{method=\"GET\"," + stream + "}"), 0);
    EXPECT_GE(Get(s, "dispotify_http_response_bytes_total{" + stream + "}"),
              static_cast<double>(a.size() + b.size()));
    EXPECT_GE(Get(s, "dispotify_stream_bytes_total"), static_cast<double>(a.size() + b.size()));
    EXPECT_GE(Get(s, "dispotify_http_requests_total{code=\"200\",method=\"GET\",route=\"/readyz\"}"), 1);
    EXPECT_EQ(text.find("Song-A"), std::string::npos);
    EXPECT_EQ(text.find("/no/such/path"), std::string::npos);
    uploads +=
        std::max(0.0, Get(s, "dispotify_http_requests_total{code=\"201\",method=\"POST\"," + upload + "}"));
    upload_bytes += std::max(0.0, Get(s, "dispotify_upload_bytes_total"));
    // The explicit upload counter is the request bytes of the upload route.
    EXPECT_EQ(Get(s, "dispotify_upload_bytes_total"),
              std::max(0.0, Get(s, "dispotify_http_request_bytes_total{" + upload + "}")));
    if (n == 1) {
      EXPECT_EQ(Get(s, "dispotify_http_requests_total{code=\"404\",method=\"GET\",route=\"unmatched\"}"), 1);
      EXPECT_GE(Get(s, "dispotify_http_requests_total{code=\"404\",method=\"GET\"," + stream + "}"), 1);
    }

    // Storage, catalog, replication.
    EXPECT_GE(Get(s, "dispotify_storage_files"), 0);  // 2 songs x 2 copies on 3 nodes: 0..2 here
    EXPECT_GE(Get(s, "dispotify_storage_bytes"), 0);
    EXPECT_GT(Get(s, "dispotify_storage_free_bytes"), 0);
    EXPECT_GE(Get(s, "dispotify_storage_total_bytes"), Get(s, "dispotify_storage_free_bytes"));
    EXPECT_EQ(Get(s, "dispotify_catalog_songs"), 2);
    EXPECT_EQ(Get(s, "dispotify_catalog_bytes"), static_cast<double>(a.size() + b.size()));
    EXPECT_EQ(Get(s, "dispotify_catalog_replication_factor"), 2);
    EXPECT_EQ(Get(s, "dispotify_replication_under_replicated_files"), 0);
    EXPECT_EQ(Get(s, "dispotify_replication_unavailable_files"), 0);
    EXPECT_GE(Get(s, "dispotify_replication_copies_made_total"), 0);
    EXPECT_GE(Get(s, "dispotify_replication_copies_trimmed_total"), 0);
    EXPECT_GE(Get(s, "dispotify_replication_bytes_copied_total"), 0);
    EXPECT_GE(Get(s, "dispotify_replication_copy_failures_total"), 0);

    // Raft: one leader, known to all.
    EXPECT_EQ(Get(s, "dispotify_raft_is_leader"), n == leader ? 1 : 0);
    EXPECT_EQ(Get(s, "dispotify_raft_leader_id"), static_cast<double>(leader));
    EXPECT_EQ(Get(s, "dispotify_raft_role{role=\"leader\"}"), n == leader ? 1 : 0);
    EXPECT_GT(Get(s, "dispotify_raft_applied_index"), 0);
    EXPECT_GE(Get(s, "dispotify_raft_commit_index"), Get(s, "dispotify_raft_applied_index"));

    // mTLS: the harness's certificates are valid for 30 days from the cluster's creation.
    EXPECT_GT(Get(s, "dispotify_tls_cert_not_after_seconds"), now + 29 * 86400.0);
    EXPECT_LE(Get(s, "dispotify_tls_cert_not_after_seconds"), now + 30 * 86400.0 + 60);

    // Process.
    EXPECT_GT(Get(s, "process_resident_memory_bytes"), 1 << 20);
    EXPECT_GT(Get(s, "process_cpu_seconds_total"), 0);
    EXPECT_GE(Get(s, "process_open_fds"), 3);
    EXPECT_GT(Get(s, "process_start_time_seconds"), now - 600);
    EXPECT_LE(Get(s, "process_start_time_seconds"), now + 1);
  }
  EXPECT_EQ(uploads, 2);
  EXPECT_GE(upload_bytes, static_cast<double>(a.size() + b.size()));

  std::map<uint64_t, std::string> texts;
  for (uint64_t n = 1; n <= 3; ++n) {
    texts[n] = Scrape(n);
    ASSERT_FALSE(texts[n].empty()) << "node " << n;
  }

  // kill -9 of a node: the others see it down once its health checks lapse (health_ttl, 6 s).
  c.Kill9(3);
  EXPECT_TRUE(Eventually(
      [&] {
        return Get(Parse(Scrape(1)), "dispotify_peer_up{peer=\"3\"}") == 0 &&
               Get(Parse(Scrape(2)), "dispotify_peer_up{peer=\"3\"}") == 0;
      },
      30s));
  EXPECT_EQ(Get(Parse(Scrape(1)), "dispotify_peer_up{peer=\"2\"}"), 1);
  texts[4] = Scrape(1);  // with a peer down

  if (::access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " not installed (scripts/install-deps.sh)";
  for (const auto& [n, text] : texts) {
    auto [rc, out] = Promtool(text, c.base_dir());
    EXPECT_EQ(rc, 0) << "promtool check metrics on scrape " << n << ":\n" << out;
  }
}

}  // namespace
}  // namespace dispotify::e2e
