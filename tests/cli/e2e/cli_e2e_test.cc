// dispotifyctl against a real one-node cluster: the built binary is run as a user would, and its
// exit codes, output and streamed bytes are checked.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "e2e/cluster_harness.h"
#include "tests/mocks/temp_dir.h"
#include "tests/support/exec.h"

extern char** environ;

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;

using CtlRun = testing_exec::ExecResult;

std::string ReadFile(const std::string& path) {
  return testing_exec::ReadWholeFile(path);
}

// A small valid PCM WAV file (mono, 8 kHz, 16-bit) of random samples, so that a tag reader accepts it.
std::string Wav(size_t samples, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string data(samples * 2, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  auto u32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
  };
  auto u16 = [](uint16_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}; };
  return "RIFF" + u32(static_cast<uint32_t>(36 + data.size())) + "WAVEfmt " + u32(16) + u16(1) + u16(1) +
         u32(8000) + u32(16000) + u16(2) + u16(16) + "data" + u32(static_cast<uint32_t>(data.size())) + data;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<Cluster>(1, "cli");
    // Secured, as a user runs it: every call carries the admin API token through $DISPOTIFY_TOKEN
    // (the children inherit this process's environment), and anonymous calls are refused.
    const std::string token_file = cluster_->base_dir() + "/api-token";
    std::ofstream(token_file) << kToken << "\n";
    cluster_->SetCommonFlags({"--auth", "true", "--api-token-file", token_file, "--repair-interval-ms", "200",
                              "--scrub-interval-s", "0"});
    cluster_->StartAll();
    ASSERT_NE(cluster_->WaitLeader(), 0u);
    ::setenv("DISPOTIFY_TOKEN", kToken, 1);
    ::setenv("DISPOTIFY_TOKEN_FILE", tmp_.Sub("no-token-file").c_str(), 1);
    endpoint_ = "http://127.0.0.1:" + std::to_string(cluster_->spec(1).http_port);
  }
  void TearDown() override {
    ::unsetenv("DISPOTIFY_TOKEN");
    ::unsetenv("DISPOTIFY_TOKEN_FILE");
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  static constexpr const char* kToken = "cli-e2e-admin-token-0123456789abcdef0123456789abcdef";

  // Runs dispotifyctl with `args` (after --endpoints and --timeout), stdout and stderr to files.
  CtlRun Ctl(const std::vector<std::string>& args, const std::string& endpoints = "") {
    std::vector<std::string> argv = {DISPOTIFYCTL_BINARY, "--endpoints",
                                     endpoints.empty() ? endpoint_ : endpoints, "--timeout", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing_exec::Exec(argv, tmp_.path());
  }

  static bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(200ms);
    }
    return pred();
  }

  std::unique_ptr<Cluster> cluster_;
  std::string endpoint_;
  mocks::TempDir tmp_;
};

#define EXPECT_RUN(run, expected_code) \
  EXPECT_EQ((run).code, expected_code) << "stdout:\n" << (run).out << "\nstderr:\n" << (run).err

TEST_F(CliE2eTest, UploadSearchListStreamRemoveAndStatus) {
  const std::string first = Wav(40'000, 1);
  const std::string second = Wav(120'000, 2);
  WriteFile(tmp_.Sub("music/First Song.wav"), first);
  WriteFile(tmp_.Sub("music/sub/Second.wav"), second);
  WriteFile(tmp_.Sub("music/notes.txt"), "not audio");
  // The same name in two albums: two songs (the id comes from the path below the folder's parent).
  const std::string intro_a = Wav(8'000, 3);
  const std::string intro_b = Wav(9'000, 4);
  WriteFile(tmp_.Sub("music/Album A/01 - Intro.wav"), intro_a);
  WriteFile(tmp_.Sub("music/Album B/01 - Intro.wav"), intro_b);

  // The first endpoint is down: the client moves on to the node (and retries its 503s while it
  // gets ready).
  const std::string down = "http://127.0.0.1:" + std::to_string(FreePort());
  CtlRun up = Ctl({"upload", tmp_.Sub("music")}, down + "," + endpoint_);
  EXPECT_RUN(up, 0);
  EXPECT_NE(up.out.find("stored          " + tmp_.Sub("music/First Song.wav") + " -> music_First-Song.wav"),
            std::string::npos)
      << up.out;
  EXPECT_NE(up.out.find(" -> music_Album-A_01-Intro.wav"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find(" -> music_Album-B_01-Intro.wav"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("stored 4, already present 0, failed 0"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("skipped 1 file that is not audio"), std::string::npos) << up.out;

  // Again: the same bytes are already there (200), which is no failure.
  CtlRun again = Ctl({"upload", tmp_.Sub("music")});
  EXPECT_RUN(again, 0);
  EXPECT_NE(again.out.find("stored 0, already present 4, failed 0"), std::string::npos) << again.out;
  EXPECT_NE(
      again.out.find("already present " + tmp_.Sub("music/sub/Second.wav") + " -> music_sub_Second.wav"),
      std::string::npos)
      << again.out;

  // Other bytes under a stored path: refused, with the way out named.
  WriteFile(tmp_.Sub("other/music/Album A/01 - Intro.wav"), Wav(8'000, 5));
  CtlRun clash = Ctl({"upload", tmp_.Sub("other/music")});
  EXPECT_RUN(clash, 1);
  EXPECT_NE(clash.err.find("already_exists"), std::string::npos) << clash.err;
  EXPECT_NE(clash.err.find("--replace"), std::string::npos) << clash.err;

  // A file operand is sent under its own name.
  WriteFile(tmp_.Sub("single/Solo Take.wav"), Wav(5'000, 6));
  CtlRun single = Ctl({"upload", tmp_.Sub("single/Solo Take.wav")});
  EXPECT_RUN(single, 0);
  EXPECT_NE(single.out.find(" -> Solo-Take.wav"), std::string::npos) << single.out;
  EXPECT_RUN(Ctl({"rm", "Solo-Take.wav"}), 0);

  // Problems are reported per file, and the exit code says so.
  CtlRun bad = Ctl({"upload", tmp_.Sub("music/notes.txt"), tmp_.Sub("missing.mp3")});
  EXPECT_RUN(bad, 1);
  EXPECT_NE(bad.out.find("failed 2"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("missing.mp3: no such file or folder"), std::string::npos) << bad.out;

  CtlRun search;
  EXPECT_TRUE(Eventually(
      [&] {
        search = Ctl({"search", "second"});
        return search.code == 0 && search.out.find("music_sub_Second.wav") != std::string::npos;
      },
      10s))
      << search.out << search.err;
  EXPECT_EQ(search.out.rfind("FILE_ID", 0), 0u) << search.out;
  EXPECT_NE(search.out.find("DURATION"), std::string::npos) << search.out;

  CtlRun json_search = Ctl({"--json", "search", "first"});
  EXPECT_RUN(json_search, 0);
  EXPECT_NE(json_search.out.find("\"file_id\":\"music_First-Song.wav\""), std::string::npos)
      << json_search.out;
  CtlRun stale_search = Ctl({"search", "first", "--stale"});
  EXPECT_RUN(stale_search, 0);
  EXPECT_NE(stale_search.out.find("music_First-Song.wav"), std::string::npos) << stale_search.out;

  CtlRun ls = Ctl({"ls"});
  EXPECT_RUN(ls, 0);
  EXPECT_NE(ls.out.find("music_First-Song.wav"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("music_sub_Second.wav"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("\n4 songs\n"), std::string::npos) << ls.out;
  CtlRun stale_ls = Ctl({"ls", "--stale"});
  EXPECT_RUN(stale_ls, 0);
  EXPECT_NE(stale_ls.out.find("\n4 songs\n"), std::string::npos) << stale_ls.out;
  CtlRun ls1 = Ctl({"ls", "--limit", "1"});
  EXPECT_RUN(ls1, 0);
  EXPECT_NE(ls1.out.find("\n1 song\n"), std::string::npos) << ls1.out;

  // Stream back, to a file and to stdout, and compare the bytes.
  const std::string out_path = tmp_.Sub("back.wav");
  CtlRun to_file = Ctl({"stream", "music_sub_Second.wav", "-o", out_path});
  EXPECT_RUN(to_file, 0);
  EXPECT_TRUE(ReadFile(out_path) == second) << "streamed file differs";
  for (const auto& [id, bytes] :
       {std::pair{"music_Album-A_01-Intro.wav", &intro_a}, {"music_Album-B_01-Intro.wav", &intro_b}}) {
    const std::string path = tmp_.Sub(std::string(id));
    EXPECT_RUN(Ctl({"stream", id, "-o", path}), 0);
    EXPECT_TRUE(ReadFile(path) == *bytes) << id << " differs";
  }
  // With the digest known, the song is not looked up first.
  const std::string with_digest = tmp_.Sub("digest.wav");
  EXPECT_RUN(Ctl({"stream", "music_sub_Second.wav", "--sha256", Sha256Hex(second), "-o", with_digest}), 0);
  EXPECT_TRUE(ReadFile(with_digest) == second) << "stream --sha256 differs";
  CtlRun to_stdout = Ctl({"stream", "music_First-Song.wav", "-o", "-"});
  EXPECT_RUN(to_stdout, 0);
  EXPECT_TRUE(to_stdout.out == first) << "streamed stdout differs (" << to_stdout.out.size() << " bytes)";

  // Resume: a file holding the first part gets the rest.
  WriteFile(out_path, second.substr(0, 1000));
  CtlRun resumed = Ctl({"stream", "music_sub_Second.wav", "-o", out_path, "--resume"});
  EXPECT_RUN(resumed, 0);
  EXPECT_TRUE(ReadFile(out_path) == second) << "resumed file differs";

  CtlRun status = Ctl({"cluster", "status"});
  EXPECT_RUN(status, 0);
  EXPECT_NE(status.out.find("leader:       node 1"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("songs:        4"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("ID  ADDRESS"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find(cluster_->spec(1).address() + "  leader"), std::string::npos) << status.out;

  CtlRun rm = Ctl({"rm", "music_First-Song.wav", "music_sub_Second.wav", "music_Album-A_01-Intro.wav",
                   "music_Album-B_01-Intro.wav"});
  EXPECT_RUN(rm, 0);
  EXPECT_NE(rm.out.find("deleted music_First-Song.wav\ndeleted music_sub_Second.wav\n"), std::string::npos)
      << rm.out;
  CtlRun gone = Ctl({"stream", "music_sub_Second.wav", "-o", tmp_.Sub("gone.wav")});
  EXPECT_RUN(gone, 1);
  EXPECT_NE(gone.err.find("HTTP 404 not_found"), std::string::npos) << gone.err;
  EXPECT_FALSE(std::filesystem::exists(tmp_.Sub("gone.wav")));
  CtlRun rm_again = Ctl({"rm", "music_sub_Second.wav"});
  EXPECT_RUN(rm_again, 1);
  EXPECT_NE(rm_again.err.find("HTTP 404"), std::string::npos) << rm_again.err;
  CtlRun empty = Ctl({"ls"});
  EXPECT_RUN(empty, 0);
  EXPECT_EQ(empty.out, "no songs\n");
}

TEST_F(CliE2eTest, AdminCommandsAndErrors) {
  CtlRun rf;
  EXPECT_TRUE(Eventually(
      [&] {
        rf = Ctl({"replication", "set", "1"});
        return rf.code == 0;
      },
      20s))
      << rf.out << rf.err;
  EXPECT_EQ(rf.out, "replication factor set to 1\n");
  CtlRun status = Ctl({"--json", "cluster", "status"});
  EXPECT_RUN(status, 0);
  EXPECT_NE(status.out.find("\"replication_factor\":1"), std::string::npos) << status.out;

  // A one-node cluster has nobody to hand leadership to: the server's 409 is shown as is.
  CtlRun transfer = Ctl({"cluster", "transfer"});
  EXPECT_RUN(transfer, 1);
  EXPECT_NE(transfer.err.find("error: cluster transfer: HTTP 409"), std::string::npos) << transfer.err;

  CtlRun usage = Ctl({"cluster", "frob"});
  EXPECT_RUN(usage, 2);
  CtlRun nobody = Ctl({"ls", "--timeout", "1"}, "http://127.0.0.1:" + std::to_string(FreePort()));
  EXPECT_RUN(nobody, 1);
  EXPECT_NE(nobody.err.find("no node answered"), std::string::npos) << nobody.err;

  // Without a credential the node refuses, and the CLI says how to get one.
  ::unsetenv("DISPOTIFY_TOKEN");
  CtlRun anonymous = Ctl({"ls"});
  ::setenv("DISPOTIFY_TOKEN", kToken, 1);
  EXPECT_RUN(anonymous, 1);
  EXPECT_NE(anonymous.err.find("401"), std::string::npos) << anonymous.err;
  CtlRun wrong = Ctl({"--token", "not-a-token", "ls"});
  EXPECT_RUN(wrong, 1);
  EXPECT_NE(wrong.err.find("401"), std::string::npos) << wrong.err;
}

}  // namespace
}  // namespace dispotify::e2e
