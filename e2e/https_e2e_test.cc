// HTTPS served by the nodes themselves (issue 13: "The REST API can serve HTTPS itself
// (certificate files, re-read on change)") on a real 3-node cluster with auth on: uploads over
// HTTPS, songs streamed back byte-exact (whole and by Range) from every node, plaintext HTTP and
// untrusting clients refused at the handshake, every node's certificate rotated twice while
// uploads and streams run with no failed request, and dispotifyctl against https:// endpoints
// with --ca-file (and refused without it).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/tls/client_conn.h"
#include "common/tls/pki.h"
#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "tests/node/api/http/tls_test_client.h"
#include "tests/support/audio_files.h"
#include "tests/support/exec.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;
using api::http::testing::HttpsCall;
using api::http::testing::TlsTestClient;

constexpr char kToken[] = "https-e2e-static-admin-token-0123456789";

std::string Bearer() {
  return std::string("Authorization: Bearer ") + kToken + "\r\n";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// An MP3 of `frames` frames whose payload is unique to `seed` (so every song has its own bytes).
std::string Song(const std::string& title, int frames, uint32_t seed) {
  std::string mp3 = testing_audio::MakeMp3(title, frames);
  const size_t audio = mp3.size() - static_cast<size_t>(frames) * testing_audio::kMp3FrameBytes;
  uint32_t x = seed * 2654435761u + 1;
  for (size_t f = audio; f < mp3.size(); f += testing_audio::kMp3FrameBytes) {
    for (size_t i = f + 4; i < f + testing_audio::kMp3FrameBytes; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      mp3[i] = static_cast<char>(x);
    }
  }
  return mp3;
}

class HttpsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>(3, "https");
    cluster_->SetCommonFlags(
        {"--auth", "true", "--api-token", kToken, "--replication-factor", "3", "--scrub-interval-s", "0"});
    for (uint64_t id = 1; id <= 3; ++id) {
      auto [cert, key] = cluster_->IssueCertificate(id, "https-" + std::to_string(id));
      cluster_->Start(id, {"--http-tls-cert-file", cert, "--http-tls-key-file", key});
    }
    ASSERT_NE(cluster_->WaitLeader(30s), 0u);
    ca_ = Must(tls::NewClientContext(ReadAll(cluster_->TlsCaPath())));
    for (uint64_t id = 1; id <= 3; ++id) {
      ASSERT_TRUE(Eventually(
          [&] {
            auto r = HttpsCall(Port(id), ca_.get(), "GET", "/readyz");
            return r && r->status == 200;
          },
          30s))
          << "node " << id << " never ready over HTTPS";
    }
  }

  void TearDown() override {
    if (HasFailure()) cluster_->DumpLogs();
  }

  template <typename T>
  static T Must(Result<T> r) {
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    return std::move(r).value();
  }

  uint16_t Port(uint64_t id) { return static_cast<uint16_t>(cluster_->spec(id).http_port); }

  std::optional<api::http::testing::ClientResponse> Upload(uint64_t node, const std::string& id,
                                                           const std::string& data) {
    return HttpsCall(Port(node), ca_.get(), "POST",
                     "/music/upload?file_id=" + id + "&filename=" + id + ".mp3", data,
                     Bearer() + "Content-Type: audio/mpeg\r\n");
  }

  std::unique_ptr<Cluster> cluster_;
  tls::SharedSslCtx ca_;
};

TEST_F(HttpsE2eTest, UploadStreamRotateAndCli) {
  // Plaintext HTTP on the HTTPS port gets no HTTP answer, and no data.
  {
    api::http::testing::TestClient plain(Port(1), 5000);
    ASSERT_TRUE(plain.Send("GET /music/songs HTTP/1.1\r\nHost: x\r\n" + Bearer() + "\r\n"));
    EXPECT_FALSE(plain.ReadResponse());
  }
  // A client that trusts another CA refuses the node's certificate.
  {
    auto other = Must(tls::CreateCa("other", tls::Validity::Days(std::chrono::system_clock::now(), 1)));
    auto untrusting = Must(tls::NewClientContext(Must(tls::CertToPem(other.cert.get()))));
    TlsTestClient refused(Port(2), untrusting.get());
    EXPECT_FALSE(refused.connected());
  }

  // Upload over HTTPS through node 1, stream back byte-exact from every node, whole and by Range.
  const std::string song = Song("Over TLS", 2500, 1);  // ~1 MiB
  auto up = Upload(1, "tls-song", song);
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status, 201) << up->body;
  for (uint64_t node = 1; node <= 3; ++node) {
    auto whole = HttpsCall(Port(node), ca_.get(), "GET", "/music/stream/tls-song", "", Bearer());
    ASSERT_TRUE(whole) << "node " << node;
    EXPECT_EQ(whole->status, 200);
    EXPECT_TRUE(whole->body == song) << "node " << node << ": " << whole->body.size() << " bytes";
    auto part = HttpsCall(Port(node), ca_.get(), "GET", "/music/stream/tls-song", "",
                          Bearer() + "Range: bytes=1000-300999\r\n");
    ASSERT_TRUE(part);
    EXPECT_EQ(part->status, 206);
    EXPECT_EQ(part->Header("content-range"), "bytes 1000-300999/" + std::to_string(song.size()));
    EXPECT_TRUE(part->body == song.substr(1000, 300000)) << "node " << node;
  }

  // Rotation under load: uploaders and streamers (fresh connections and one keep-alive each) on
  // every node while each node's certificate is replaced twice (key, then certificate, each by
  // rename: the node sees a mismatched pair in between and keeps its current one).
  std::map<uint64_t, std::string> first_serial;
  for (uint64_t node = 1; node <= 3; ++node) {
    TlsTestClient c(Port(node), ca_.get());
    ASSERT_TRUE(c.connected()) << c.error().ToString();
    first_serial[node] = c.PeerSerial();
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> uploads{0};
  std::atomic<int> streams{0};
  std::mutex mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    ++failures;
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 10) errors.push_back(what);
  };
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const uint64_t node = 1 + static_cast<uint64_t>(i + t) % 3;
        const std::string id = "rot-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = Upload(node, id, Song(id, 200, static_cast<uint32_t>(100 + t * 1000 + i)));
        if (!r || r->status != 201) {
          fail("upload " + id + " to node " + std::to_string(node) + ": " +
               (r ? std::to_string(r->status) + " " + r->body : std::string("no answer")));
        } else {
          ++uploads;
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&, t] {
      std::unique_ptr<TlsTestClient> keep;
      for (int i = 0; !stop; ++i) {
        const uint64_t node = 1 + static_cast<uint64_t>(i + t) % 3;
        const uint64_t first = static_cast<uint64_t>(i * 7919) % (song.size() - 65536);
        const std::string req = "GET /music/stream/tls-song HTTP/1.1\r\nHost: x\r\n" + Bearer() +
                                "Range: bytes=" + std::to_string(first) + "-" +
                                std::to_string(first + 65535) + "\r\n\r\n";
        std::optional<api::http::testing::ClientResponse> r;
        if (t == 0) {  // a fresh connection (and handshake) per request
          TlsTestClient c(Port(node), ca_.get());
          if (c.connected() && c.Send(req)) r = c.ReadResponse();
        } else {  // one keep-alive connection to node 1 across the rotations
          if (!keep) keep = std::make_unique<TlsTestClient>(Port(1), ca_.get());
          if (keep->connected() && keep->Send(req)) r = keep->ReadResponse();
        }
        if (!r || r->status != 206 || r->body != song.substr(first, 65536)) {
          fail("stream from node " + std::to_string(t == 0 ? node : 1) + ": " +
               (r ? std::to_string(r->status) : std::string("no answer")));
        } else {
          ++streams;
        }
      }
    });
  }
  std::this_thread::sleep_for(1s);
  for (int round = 0; round < 2; ++round) {
    for (uint64_t node = 1; node <= 3; ++node) {
      cluster_->IssueCertificate(node, "https-" + std::to_string(node));
    }
    // Each node hands the new certificate to new connections within a few poll intervals.
    for (uint64_t node = 1; node <= 3; ++node) {
      std::string seen;
      EXPECT_TRUE(Eventually(
          [&] {
            TlsTestClient c(Port(node), ca_.get());
            seen = c.PeerSerial();
            return !seen.empty() && seen != first_serial[node];
          },
          10s))
          << "node " << node << " still serves its old certificate";
      first_serial[node] = seen;
    }
    std::this_thread::sleep_for(1s);
  }
  stop = true;
  for (auto& th : load) th.join();
  EXPECT_EQ(failures.load(), 0) << (errors.empty() ? "" : errors.front());
  EXPECT_GT(uploads.load(), 3);
  EXPECT_GT(streams.load(), 20);
  std::printf("rotation under load: %d uploads, %d range reads, %d failures\n", uploads.load(),
              streams.load(), failures.load());

  // dispotifyctl against https:// endpoints: with --ca-file (or DISPOTIFY_CA_FILE) it works;
  // without, the node's private CA is not trusted and the call fails.
  const std::string endpoints =
      "https://127.0.0.1:" + std::to_string(Port(1)) + ",https://127.0.0.1:" + std::to_string(Port(2));
  auto ctl = [&](const std::string& env, const std::string& args) {
    const std::string cmd = "env -u DISPOTIFY_CA_FILE DISPOTIFY_TOKEN=" + std::string(kToken) + " " + env +
                            " " + DISPOTIFYCTL_BINARY + " --endpoints " + endpoints + " --timeout 10 " + args;
    return testing_exec::Exec({"sh", "-c", cmd}, cluster_->base_dir());
  };
  const std::string ca = cluster_->TlsCaPath();
  auto untrusted = ctl("", "ls");
  EXPECT_NE(untrusted.code, 0) << untrusted.out;
  auto ls = ctl("", "--ca-file " + ca + " ls");
  EXPECT_EQ(ls.code, 0) << ls.out << ls.err;
  EXPECT_NE(ls.out.find("tls-song"), std::string::npos) << ls.out;
  const std::string local = cluster_->base_dir() + "/cli-song.mp3";
  std::ofstream(local, std::ios::binary) << Song("Cli over TLS", 800, 7);
  auto upload = ctl("DISPOTIFY_CA_FILE=" + ca, "upload " + local);
  EXPECT_EQ(upload.code, 0) << upload.out << upload.err;
  const std::string back = cluster_->base_dir() + "/cli-song.back";
  auto stream = ctl("DISPOTIFY_CA_FILE=" + ca, "stream cli-song.mp3 -o " + back);
  EXPECT_EQ(stream.code, 0) << stream.out << stream.err;
  EXPECT_TRUE(ReadAll(back) == ReadAll(local));

  // The health probe of the images speaks https with the CA too.
  const std::string healthz = "https://127.0.0.1:" + std::to_string(Port(3)) + "/healthz";
  auto probe =
      testing_exec::Exec({DISPOTIFY_NODE_BINARY, "probe", healthz, "--ca-file", ca}, cluster_->base_dir());
  EXPECT_EQ(probe.code, 0) << probe.out << probe.err;
  auto blind = testing_exec::Exec({DISPOTIFY_NODE_BINARY, "probe", healthz}, cluster_->base_dir());
  EXPECT_EQ(blind.code, 1) << blind.out << blind.err;
}

}  // namespace
}  // namespace dispotify::e2e
