// Encryption at rest on real dispotify-node processes (issue 13, Tests: "Encryption"): a 3-node
// cluster whose nodes each have their OWN keyring (different key ids and bytes, so the copies that
// replication makes can only work if peers exchange plaintext and each node seals with its own
// key). Uploads through REST, streams with Range requests at random offsets byte-exact from every
// node, finds no plaintext run on any node's disk under data_dir/blobs, then rotates every node's
// key (the keyring file rewritten with a new last key, and the node restarted: the keyring is read
// at start) and reads old and new files back, until the background re-seal has moved every file
// to the new key and the old key can be dropped.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "tests/support/audio_files.h"
#include "tests/support/plaintext_scan.h"

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;

uint64_t Seed() {
  const char* s = std::getenv("DISPOTIFY_SEAL_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : 1312;
}

// A real MP3 (ID3 tag, valid frame headers) whose frames carry random payload instead of silence,
// so that every 32-byte window of it is distinctive and a leak cannot hide among zeros.
std::string NoisyMp3(const std::string& title, int frames, uint64_t seed) {
  std::string mp3 = testing_audio::MakeMp3(title, frames);
  std::mt19937_64 rng(seed);
  const size_t audio = mp3.size() - static_cast<size_t>(frames) * testing_audio::kMp3FrameBytes;
  for (size_t f = audio; f < mp3.size(); f += testing_audio::kMp3FrameBytes) {
    for (size_t i = f + 4; i < f + testing_audio::kMp3FrameBytes; ++i) mp3[i] = static_cast<char>(rng());
  }
  return mp3;
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The key id a blob file is sealed under (blob header 256 bytes, then the sealed header: key id
// size u32 at 20, key id at 24), or "" for a plaintext blob.
std::string KeyIdOf(const std::string& blob) {
  constexpr size_t kSealed = 256;
  if (blob.size() < kSealed + 96 || (static_cast<uint8_t>(blob[16]) & 1) == 0) return "";
  const auto n = static_cast<uint8_t>(blob[kSealed + 20]);
  return blob.substr(kSealed + 24, n);
}

class EncryptionE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  std::string KeyringPath(uint64_t n) { return cluster_->base_dir() + "/keyring-" + std::to_string(n); }

  // Three nodes, each with a keyring of its own key "node<n>-a", running and ready.
  void StartSealedCluster(const std::string& name, const std::vector<std::string>& flags) {
    cluster_ = std::make_unique<Cluster>(3, name);
    Cluster& c = *cluster_;
    c.SetCommonFlags(flags);
    for (uint64_t n = 1; n <= 3; ++n) {
      WriteKeyringFile(KeyringPath(n), {"node" + std::to_string(n) + "-a"});
      c.spec(n).keyring_file = KeyringPath(n);
    }
    c.StartAll();
    ASSERT_NE(c.WaitLeader(), 0u);
    for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  }

  int Port(uint64_t n) { return cluster_->spec(n).http_port; }

  bool WaitReady(uint64_t n) {
    return Eventually(
        [&] {
          auto r = HttpCall(Port(n), "GET", "/readyz");
          return r && r->status == 200;
        },
        30s);
  }

  void Upload(uint64_t n, const std::string& name, const std::string& data) {
    std::optional<ClientResponse> up;
    ASSERT_TRUE(Eventually(
        [&] {
          up = HttpUploadMultipart(Port(n), name, data, name);
          return up && up->status != 503;
        },
        30s));
    ASSERT_EQ(up->status, 201) << up->body;
  }

  // Full reads and seeded random Range reads, from every node, byte-exact.
  void ExpectStreams(const std::string& file_id, const std::string& data, std::mt19937_64* rng) {
    for (uint64_t n = 1; n <= 3; ++n) {
      std::optional<ClientResponse> full;
      ASSERT_TRUE(Eventually(
          [&] {
            full = HttpCall(Port(n), "GET", "/music/stream/" + file_id);
            return full && full->status == 200;
          },
          20s))
          << "node " << n;
      ASSERT_EQ(full->body, data) << "node " << n;
      for (int i = 0; i < 25; ++i) {
        const uint64_t first = (*rng)() % data.size();
        const uint64_t len = 1 + (*rng)() % std::min<uint64_t>(data.size() - first, 300000);
        const uint64_t last = first + len - 1;
        auto part = HttpCall(Port(n), "GET", "/music/stream/" + file_id, "",
                             "Range: bytes=" + std::to_string(first) + "-" + std::to_string(last) + "\r\n");
        ASSERT_TRUE(part) << "node " << n;
        ASSERT_EQ(part->status, 206) << "node " << n << " range " << first << "-" << last;
        ASSERT_EQ(part->body, data.substr(first, len)) << "node " << n << " range " << first << "-" << last;
      }
    }
  }

  // Every regular file under node n's data_dir/blobs: path -> bytes. The node creates and removes
  // files meanwhile (temp files of a re-seal): iterated with error codes, never throwing.
  std::map<std::string, std::string> BlobFiles(uint64_t n) {
    namespace fs = std::filesystem;
    std::map<std::string, std::string> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(cluster_->spec(n).data_dir + "/blobs", ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_regular_file(type_ec)) out[it->path().string()] = ReadAll(it->path());
    }
    return out;
  }

  void ExpectNoPlaintextOnDisk(const std::vector<const std::string*>& contents) {
    for (uint64_t n = 1; n <= 3; ++n) {
      for (const auto& [path, bytes] : BlobFiles(n)) {
        for (const std::string* plain : contents) {
          auto at = testing_bytes::FindPlaintextRun(bytes, *plain);
          EXPECT_FALSE(at.has_value()) << path << " holds plaintext from offset " << at.value_or(0);
        }
      }
    }
  }

  // The key ids of node n's blobs (by file name).
  std::map<std::string, std::string> KeyIds(uint64_t n) {
    std::map<std::string, std::string> out;
    for (const auto& [path, bytes] : BlobFiles(n)) {
      if (path.find("/.tmp/") != std::string::npos) continue;
      out[std::filesystem::path(path).filename().string()] = KeyIdOf(bytes);
    }
    return out;
  }

  std::unique_ptr<Cluster> cluster_;
};

TEST_F(EncryptionE2eTest, SealedOnEveryNodeRangeReadsExactAndRotationKeepsOldAndNewReadable) {
  const uint64_t seed = Seed();
  std::printf("seed %llu (rerun with DISPOTIFY_SEAL_SEED)\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  // A short inventory interval: the re-seal after the rotation runs with it.
  ASSERT_NO_FATAL_FAILURE(StartSealedCluster(
      "enc", {"--repair-interval-ms", "200", "--scrub-interval-s", "0", "--inventory-interval-ms", "500"}));
  Cluster& c = *cluster_;

  // ~700 KiB: eleven 64 KiB chunks, so ranges cross chunk boundaries.
  const std::string a = NoisyMp3("Sealed A", 1700, rng());
  Upload(1, "sealed-a.mp3", a);
  ExpectStreams("sealed-a.mp3", a, &rng);
  ExpectNoPlaintextOnDisk({&a});
  for (uint64_t n = 1; n <= 3; ++n) {
    EXPECT_EQ(KeyIds(n)["sealed-a.mp3"], "node" + std::to_string(n) + "-a")
        << "each node seals with its own key";
  }

  // Rotation: a new last key in every keyring file, the old one kept; a restart reads it.
  for (uint64_t n = 1; n <= 3; ++n) {
    ASSERT_EQ(c.Stop(n), 0) << "node " << n;
    WriteKeyringFile(KeyringPath(n), {"node" + std::to_string(n) + "-a", "node" + std::to_string(n) + "-b"});
    c.Start(n);
  }
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  const std::string b = NoisyMp3("Sealed B", 900, rng());
  Upload(2, "sealed-b.mp3", b);
  ExpectStreams("sealed-a.mp3", a, &rng);
  ExpectStreams("sealed-b.mp3", b, &rng);

  // The background re-seal moves the old file to the new key on every node.
  for (uint64_t n = 1; n <= 3; ++n) {
    const std::string want = "node" + std::to_string(n) + "-b";
    EXPECT_TRUE(Eventually(
        [&] {
          auto ids = KeyIds(n);
          return ids["sealed-a.mp3"] == want && ids["sealed-b.mp3"] == want;
        },
        30s))
        << "node " << n << ": sealed-a.mp3 under '" << KeyIds(n)["sealed-a.mp3"] << "'";
  }
  ExpectNoPlaintextOnDisk({&a, &b});

  // Proof that nothing needs the old key any more: drop it, restart, read everything back.
  for (uint64_t n = 1; n <= 3; ++n) {
    ASSERT_EQ(c.Stop(n), 0) << "node " << n;
    WriteKeyringFile(KeyringPath(n), {"node" + std::to_string(n) + "-b"});
    c.Start(n);
  }
  ASSERT_NE(c.WaitLeader(), 0u);
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(WaitReady(n)) << "node " << n;
  ExpectStreams("sealed-a.mp3", a, &rng);
  ExpectStreams("sealed-b.mp3", b, &rng);
}

// A damaged ciphertext byte on one node: that node never serves the bad chunk (the stream comes
// from a replica, byte-exact), reports its copy, and repair replaces it with a good sealed one.
TEST_F(EncryptionE2eTest, ADamagedSealedCopyIsNeverServedAndIsRepaired) {
  std::mt19937_64 rng(Seed() + 1);
  ASSERT_NO_FATAL_FAILURE(
      StartSealedCluster("enc-damage", {"--repair-interval-ms", "200", "--scrub-interval-s", "0"}));
  const std::string data = NoisyMp3("Damaged", 600, rng());
  Upload(1, "damaged.mp3", data);
  ExpectStreams("damaged.mp3", data, &rng);

  std::string path;
  for (const auto& [p, bytes] : BlobFiles(1)) {
    if (p.ends_with("/damaged.mp3")) path = p;
  }
  ASSERT_FALSE(path.empty());
  std::string damaged = ReadAll(path);
  const size_t at = 256 + 96 + 100;  // inside chunk 0's ciphertext
  damaged[at] = static_cast<char>(damaged[at] ^ 0x01);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << damaged;
  }
  auto full = HttpCall(Port(1), "GET", "/music/stream/damaged.mp3");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 200);
  EXPECT_EQ(full->body, data) << "served from a replica, never the damaged chunk";
  EXPECT_TRUE(Eventually([&] { return ReadAll(path) != damaged && !ReadAll(path).empty(); }, 30s))
      << "repair replaces the reported copy";
  EXPECT_EQ(KeyIds(1)["damaged.mp3"], "node1-a");
  ExpectStreams("damaged.mp3", data, &rng);
}

// A keyring the node cannot use stops it at start with a clear error, before it writes anything.
TEST_F(EncryptionE2eTest, ABadKeyringFileRefusesToStart) {
  cluster_ = std::make_unique<Cluster>(1, "enc-bad");
  Cluster& c = *cluster_;
  const std::string path = KeyringPath(1);
  WriteKeyringFile(path, {"k1"});
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(c.RunToExit(1, {"--encryption-keyring-file", path}), 2) << "too open";
  {
    std::ofstream out(path, std::ios::trunc);
    out << "k1:not-base64\n";
  }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_EQ(c.RunToExit(1, {"--encryption-keyring-file", path}), 2) << "malformed";
  EXPECT_EQ(c.RunToExit(1, {"--encryption-keyring-file", path + ".absent"}), 2) << "unreadable";
  const std::string log = ReadAll(c.LogPath(1));
  EXPECT_NE(log.find("encryption_keyring_file: cannot use the keyring"), std::string::npos) << log;
}

}  // namespace
}  // namespace dispotify::e2e
