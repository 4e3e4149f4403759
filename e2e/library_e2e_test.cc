// A real music library through dispotifyctl and a 3-node cluster (issue 9): albums in nested
// folders whose files share names ("01 - Intro.mp3" in two albums, "track01.flac" on two discs),
// made by ffmpeg with real encoders and tags. Every file must be stored once under the id of its
// path, a second upload must store nothing, every file must stream back byte-exact, and with two
// of the three nodes killed every file must still stream by its content URL from the survivor.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/file_id.h"
#include "common/sha256.h"
#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "tests/mocks/temp_dir.h"
#include "tests/support/exec.h"

extern char** environ;

namespace dispotify::e2e {
namespace {

using namespace std::chrono_literals;

using testing_exec::Exec;
using testing_exec::ExecResult;
std::string ReadFile(const std::string& path) {
  return testing_exec::ReadWholeFile(path);
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

struct Track {
  std::string path;  // below the library's parent: what dispotifyctl sends as ?path=
  std::string id;    // what the server must derive from it
  std::string title;
  int frequency;  // Hz: different tones and lengths give different bytes
  int seconds;
  std::vector<std::string> codec;  // ffmpeg output options for the format
  std::string bytes;               // as made
};

#define EXPECT_RUN(run, expected_code) \
  EXPECT_EQ((run).code, expected_code) << "stdout:\n" << (run).out << "\nstderr:\n" << (run).err

class LibraryE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) cluster_->DumpLogs();
    cluster_.reset();
  }

  ExecResult Ctl(const std::vector<std::string>& args) {
    std::string endpoints;
    for (uint64_t id = 1; id <= 3; ++id) {
      endpoints += (id > 1 ? "," : "") + std::string("http://127.0.0.1:") +
                   std::to_string(cluster_->spec(id).http_port);
    }
    std::vector<std::string> argv = {DISPOTIFYCTL_BINARY, "--endpoints", endpoints, "--timeout", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Exec(argv, tmp_.path());
  }

  std::unique_ptr<Cluster> cluster_;
  mocks::TempDir tmp_;
};

TEST_F(LibraryE2eTest, UploadALibraryTwiceStreamItBackAndSurviveTwoNodesLost) {
  const std::vector<std::string> mp3 = {"-c:a", "libmp3lame", "-b:a", "32k"};
  const std::vector<std::string> flac = {"-c:a", "flac"};
  const std::vector<std::string> ogg = {"-c:a", "libvorbis", "-q:a", "0"};
  const std::vector<std::string> wav = {"-c:a", "pcm_s16le"};
  std::vector<Track> library = {
      {"Library/Album A/01 - Intro.mp3", "Library_Album-A_01-Intro.mp3", "Intro A", 440, 2, mp3, {}},
      {"Library/Album B/01 - Intro.mp3", "Library_Album-B_01-Intro.mp3", "Intro B", 523, 3, mp3, {}},
      {"Library/Album A/02 - Outro.ogg", "Library_Album-A_02-Outro.ogg", "Outro A", 330, 2, ogg, {}},
      {"Library/Box Set/Disc 1/track01.flac",
       "Library_Box-Set_Disc-1_track01.flac",
       "Disc One",
       660,
       1,
       flac,
       {}},
      {"Library/Box Set/Disc 2/track01.flac",
       "Library_Box-Set_Disc-2_track01.flac",
       "Disc Two",
       770,
       2,
       flac,
       {}},
      {"Library/Singles/Canción.wav", "Library_Singles_Canci-n.wav", "Cancion", 880, 1, wav, {}},
  };
  const std::string root = tmp_.Sub("Library");
  for (size_t i = 0; i < library.size(); ++i) {
    Track& t = library[i];
    ASSERT_EQ(FileIdFromPath(t.path), t.id) << "the id rule and this test disagree";
    const std::string out = tmp_.Sub(t.path);
    std::filesystem::create_directories(std::filesystem::path(out).parent_path());
    std::vector<std::string> args = {"ffmpeg",
                                     "-nostdin",
                                     "-hide_banner",
                                     "-loglevel",
                                     "error",
                                     "-y",
                                     "-f",
                                     "lavfi",
                                     "-i",
                                     "sine=frequency=" + std::to_string(t.frequency) +
                                         ":sample_rate=22050:duration=" + std::to_string(t.seconds),
                                     "-ac",
                                     "1"};
    args.insert(args.end(), t.codec.begin(), t.codec.end());
    for (const std::string& tag : {"title=" + t.title, std::string("artist=The Testers"),
                                   "album=" + std::filesystem::path(t.path).parent_path().filename().string(),
                                   "track=" + std::to_string(i + 1)}) {
      args.push_back("-metadata");
      args.push_back(tag);
    }
    args.push_back(out);
    ExecResult made = Exec(args, tmp_.path());
    ASSERT_EQ(made.code, 0) << "ffmpeg (scripts/install-deps.sh installs it) failed for " << t.path << ":\n"
                            << made.err;
    t.bytes = ReadFile(out);
    ASSERT_FALSE(t.bytes.empty()) << t.path;
  }
  ASSERT_NE(library[0].bytes, library[1].bytes);

  cluster_ = std::make_unique<Cluster>(3, "library");
  cluster_->SetCommonFlags({"--repair-interval-ms", "200", "--scrub-interval-s", "0"});
  cluster_->StartAll();
  ASSERT_NE(cluster_->WaitLeader(), 0u);
  const int port1 = cluster_->spec(1).http_port;

  // Every file once, under the id of its path.
  ExecResult up = Ctl({"upload", root});
  EXPECT_RUN(up, 0);
  EXPECT_NE(up.out.find("stored 6, already present 0, failed 0"), std::string::npos) << up.out;
  for (const Track& t : library) EXPECT_NE(up.out.find(" -> " + t.id + " "), std::string::npos) << up.out;

  auto list = HttpCall(port1, "GET", "/music/songs?limit=1000");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  EXPECT_EQ(Count(list->body, "\"file_id\":"), library.size()) << list->body;
  for (const Track& t : library) {
    auto song = HttpCall(port1, "GET", "/music/songs/" + t.id);
    ASSERT_TRUE(song);
    EXPECT_EQ(song->status, 200) << t.id << ": " << song->body;
    EXPECT_NE(song->body.find("\"title\":\"" + t.title + "\""), std::string::npos) << song->body;
    EXPECT_NE(song->body.find("\"sha256\":\"" + Sha256Hex(t.bytes) + "\""), std::string::npos) << song->body;
    EXPECT_NE(song->body.find("\"file_name\":\"" + std::filesystem::path(t.path).filename().string() + "\""),
              std::string::npos)
        << song->body;
  }

  // Again: nothing new.
  ExecResult again = Ctl({"upload", root});
  EXPECT_RUN(again, 0);
  EXPECT_NE(again.out.find("stored 0, already present 6, failed 0"), std::string::npos) << again.out;
  EXPECT_EQ(Count(again.out, "already present " + root), library.size()) << again.out;
  auto relist = HttpCall(port1, "GET", "/music/songs?limit=1000");
  ASSERT_TRUE(relist);
  EXPECT_EQ(Count(relist->body, "\"file_id\":"), library.size()) << relist->body;

  // Back through the CLI, byte-exact.
  for (const Track& t : library) {
    const std::string back = tmp_.Sub("back-" + t.id);
    ExecResult stream = Ctl({"stream", t.id, "-o", back});
    EXPECT_RUN(stream, 0);
    EXPECT_TRUE(ReadFile(back) == t.bytes) << t.id << " streamed back differs";
  }

  // At R=3 every node holds every file: wait until the catalog says so, then lose two nodes. The
  // survivor has no quorum (no catalog read), but serves content URLs from its verified copies.
  for (const Track& t : library) {
    EXPECT_TRUE(Eventually(
        [&] {
          auto song = HttpCall(port1, "GET", "/music/songs/" + t.id);
          return song && song->status == 200 && Count(song->body, "\"state\":\"healthy\"") == 3;
        },
        20s))
        << t.id << " does not have 3 healthy copies";
  }
  cluster_->Kill9(2);
  cluster_->Kill9(3);
  for (const Track& t : library) {
    auto r = HttpCall(port1, "GET", "/music/stream/" + t.id + "?sha256=" + Sha256Hex(t.bytes));
    ASSERT_TRUE(r) << t.id;
    EXPECT_EQ(r->status, 200) << t.id << ": " << r->body.substr(0, 300);
    EXPECT_TRUE(r->body == t.bytes) << t.id << " differs by content URL (" << r->body.size() << " bytes)";
  }
}

}  // namespace
}  // namespace dispotify::e2e
