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
#include "tests/support/jpeg.h"

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

// Makes `out` with ffmpeg (quiet, overwriting): `args` are the inputs and output options.
void Ffmpeg(const std::string& dir, const std::vector<std::string>& args, const std::string& out) {
  std::vector<std::string> argv = {"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(out);
  ExecResult made = Exec(argv, dir);
  ASSERT_EQ(made.code, 0) << "ffmpeg (scripts/install-deps.sh installs it) failed for " << out << ":\n"
                          << made.err;
}

std::string JsonString(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const size_t at = body.find(needle);
  if (at == std::string::npos) return "<no " + key + ">";
  const size_t start = at + needle.size();
  return body.substr(start, body.find('"', start) - start);
}

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
  // Album A's picture, which the CLI sends after the songs, naming their album.
  ASSERT_NO_FATAL_FAILURE(Ffmpeg(tmp_.path(),
                                 {"-f", "lavfi", "-i", "color=c=navy:s=120x120:d=1", "-frames:v", "1"},
                                 tmp_.Sub("Library/Album A/cover.jpg")));
  const std::string album_a_cover = Sha256Hex(ReadFile(tmp_.Sub("Library/Album A/cover.jpg")));

  cluster_ = std::make_unique<Cluster>(3, "library");
  cluster_->SetCommonFlags({"--repair-interval-ms", "200", "--scrub-interval-s", "0"});
  cluster_->StartAll();
  ASSERT_NE(cluster_->WaitLeader(), 0u);
  const int port1 = cluster_->spec(1).http_port;

  // Every file once, under the id of its path.
  ExecResult up = Ctl({"upload", root});
  EXPECT_RUN(up, 0);
  EXPECT_NE(up.out.find("stored 7, already present 0, failed 0"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find(" -> Library_Album-A_cover.jpg "), std::string::npos) << up.out;
  const std::string album_a =
      JsonString(HttpCall(port1, "GET", "/music/songs/" + library[0].id)->body, "album_id");
  EXPECT_EQ(JsonString(HttpCall(port1, "GET", "/music/albums/" + album_a)->body, "cover"), album_a_cover);
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
  EXPECT_NE(again.out.find("stored 0, already present 7, failed 0"), std::string::npos) << again.out;
  EXPECT_EQ(Count(again.out, "already present " + root), library.size() + 1) << again.out;
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

// Cover art end to end (issue 12): pictures embedded in an MP3 and a FLAC by ffmpeg are named by
// their SHA-256 in the songs' and albums' JSON, and every node serves them as thumbnails, even a
// node without a copy of the song (R=1 puts each song on one node), with immutable caching.
TEST_F(LibraryE2eTest, CoversAreReadFromUploadsAndServedAsThumbnailsByEveryNode) {
  // The pictures as files, then copied into the songs as they are (-c:v copy): the embedded bytes
  // are the file's bytes, so their SHA-256 is known here.
  ASSERT_NO_FATAL_FAILURE(Ffmpeg(tmp_.path(),
                                 {"-f", "lavfi", "-i", "color=c=red:s=400x300:d=1", "-frames:v", "1"},
                                 tmp_.Sub("red.jpg")));
  ASSERT_NO_FATAL_FAILURE(Ffmpeg(tmp_.path(),
                                 {"-f", "lavfi", "-i", "color=c=blue:s=200x200:d=1", "-frames:v", "1"},
                                 tmp_.Sub("blue.png")));
  const std::string red = Sha256Hex(ReadFile(tmp_.Sub("red.jpg")));
  const std::string blue = Sha256Hex(ReadFile(tmp_.Sub("blue.png")));
  struct Song {
    std::string file;
    std::string album;
    int track;
    std::string picture;  // "" for none
    std::vector<std::string> codec;
  };
  const std::vector<Song> songs = {
      {"red-2.mp3", "Red Album", 2, "red.jpg", {"-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "3"}},
      {"red-1.mp3", "Red Album", 1, "red.jpg", {"-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "3"}},
      {"blue-1.flac", "Blue Album", 1, "blue.png", {"-c:a", "flac"}},
      {"plain-1.mp3", "Plain Album", 1, "", {"-c:a", "libmp3lame", "-b:a", "32k"}},
  };
  for (const Song& s : songs) {
    std::vector<std::string> args = {
        "-f", "lavfi", "-i",
        "sine=frequency=" + std::to_string(300 + 100 * s.track) + ":sample_rate=22050:duration=1"};
    if (!s.picture.empty()) {
      args.insert(args.end(), {"-i", tmp_.Sub(s.picture), "-map", "0:a", "-map", "1:v", "-c:v", "copy",
                               "-disposition:v", "attached_pic"});
    }
    args.insert(args.end(), s.codec.begin(), s.codec.end());
    args.insert(args.end(), {"-metadata", "title=" + s.file, "-metadata", "artist=Painter", "-metadata",
                             "album=" + s.album, "-metadata", "track=" + std::to_string(s.track)});
    ASSERT_NO_FATAL_FAILURE(Ffmpeg(tmp_.path(), args, tmp_.Sub(s.file)));
  }

  cluster_ = std::make_unique<Cluster>(3, "covers");
  cluster_->SetCommonFlags({"--replication-factor", "1", "--scrub-interval-s", "0"});
  cluster_->StartAll();
  ASSERT_NE(cluster_->WaitLeader(), 0u);
  const int port1 = cluster_->spec(1).http_port;
  for (const Song& s : songs) {
    auto up = HttpCall(port1, "POST", "/music/upload?filename=" + s.file, ReadFile(tmp_.Sub(s.file)));
    ASSERT_TRUE(up);
    ASSERT_EQ(up->status, 201) << s.file << ": " << up->body;
    const std::string want = s.picture.empty() ? "" : s.picture == "red.jpg" ? red : blue;
    EXPECT_EQ(JsonString(up->body, "cover"), want) << s.file << ": " << up->body;
  }
  auto albums = HttpCall(port1, "GET", "/music/albums?sort=name");
  ASSERT_TRUE(albums);
  ASSERT_EQ(albums->status, 200) << albums->body;
  EXPECT_EQ(Count(albums->body, "\"cover\":\"" + blue + "\""), 1u) << albums->body;
  EXPECT_EQ(Count(albums->body, "\"cover\":\"" + red + "\""), 1u) << albums->body;
  EXPECT_EQ(Count(albums->body, "\"cover\":\"\""), 1u) << "Plain Album: " << albums->body;

  // An album picture uploaded beside the album's songs (the folder of its ?path=) becomes the
  // album's cover; it is stored like a song but is not one: not in the song listing.
  ASSERT_NO_FATAL_FAILURE(Ffmpeg(tmp_.path(),
                                 {"-f", "lavfi", "-i", "color=c=green:s=300x300:d=1", "-frames:v", "1"},
                                 tmp_.Sub("green.jpg")));
  const std::string green_bytes = ReadFile(tmp_.Sub("green.jpg"));
  const std::string green = Sha256Hex(green_bytes);
  auto early = HttpCall(port1, "POST", "/music/upload?path=Plain/cover.jpg", green_bytes);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 409) << "no song beside it yet: " << early->body;
  auto beside =
      HttpCall(port1, "POST", "/music/upload?path=Plain/plain-1.mp3", ReadFile(tmp_.Sub("plain-1.mp3")));
  ASSERT_TRUE(beside);
  ASSERT_EQ(beside->status, 201) << beside->body;
  auto pic = HttpCall(port1, "POST", "/music/upload?path=Plain/cover.jpg", green_bytes);
  ASSERT_TRUE(pic);
  ASSERT_EQ(pic->status, 201) << pic->body;
  EXPECT_EQ(JsonString(pic->body, "cover"), green) << pic->body;
  EXPECT_EQ(JsonString(pic->body, "content_type"), "image/jpeg") << pic->body;
  EXPECT_EQ(JsonString(pic->body, "album_id"), JsonString(beside->body, "album_id")) << pic->body;
  auto plain = HttpCall(port1, "GET", "/music/albums/" + JsonString(beside->body, "album_id"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(JsonString(plain->body, "cover"), green) << plain->body;
  EXPECT_EQ(Count(plain->body, "\"file_id\":"), 2u) << "two songs, no picture: " << plain->body;
  auto listed = HttpCall(port1, "GET", "/music/songs?limit=1000");
  ASSERT_TRUE(listed);
  EXPECT_EQ(Count(listed->body, "\"file_id\":"), songs.size() + 1) << listed->body;
  EXPECT_EQ(listed->body.find("Plain_cover.jpg"), std::string::npos) << listed->body;
  auto green_thumb = HttpCall(cluster_->spec(3).http_port, "GET", "/music/covers/" + green + "?size=64");
  ASSERT_TRUE(green_thumb);
  ASSERT_EQ(green_thumb->status, 200) << green_thumb->body.substr(0, 300);
  EXPECT_EQ(testing_jpeg::JpegSize(green_thumb->body), std::make_pair(64, 64));
  // Named by album id: it wins over the pictures embedded in the album's songs.
  const std::string red_album =
      JsonString(HttpCall(port1, "GET", "/music/songs/red-1.mp3")->body, "album_id");
  auto named = HttpCall(port1, "POST", "/music/upload?filename=front.jpg&album_id=" + red_album, green_bytes);
  ASSERT_TRUE(named);
  ASSERT_EQ(named->status, 201) << named->body;
  EXPECT_EQ(JsonString(HttpCall(port1, "GET", "/music/albums/" + red_album)->body, "cover"), green);
  // Bad pictures are refused with a reason, and nothing is stored.
  struct Bad {
    std::string target;
    std::string body;
    int status;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"/music/upload?path=Plain/folder.jpg", "this is not a picture", 415},
           {"/music/upload?path=Plain/back.jpg", green_bytes, 400},
           {"/music/upload?path=Plain/cover.gif", "GIF89a", 415},
           {"/music/upload?filename=cover.jpg", green_bytes, 400},
           {"/music/upload?filename=cover.jpg&album_id=0123456789abcdef", green_bytes, 404},
           {"/music/upload?path=Nowhere/cover.jpg", green_bytes, 409},
       }) {
    auto r = HttpCall(port1, "POST", bad.target, bad.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, bad.status) << bad.target << ": " << r->body;
  }
  auto after = HttpCall(port1, "GET", "/music/songs?limit=1000");
  ASSERT_TRUE(after);
  EXPECT_EQ(Count(after->body, "\"file_id\":"), songs.size() + 1) << after->body;

  // Every node, whichever holds the song: the same thumbnail, scaled to fit, never upscaled.
  std::string first;
  for (uint64_t id = 1; id <= 3; ++id) {
    const int port = cluster_->spec(id).http_port;
    auto thumb = HttpCall(port, "GET", "/music/covers/" + red + "?size=64");
    ASSERT_TRUE(thumb);
    ASSERT_EQ(thumb->status, 200) << "node " << id << ": " << thumb->body.substr(0, 300);
    EXPECT_EQ(thumb->Header("content-type"), "image/jpeg");
    EXPECT_NE(thumb->Header("cache-control").find("immutable"), std::string::npos);
    EXPECT_EQ(testing_jpeg::JpegSize(thumb->body), std::make_pair(64, 48)) << "node " << id;
    if (first.empty()) first = thumb->body;
    EXPECT_TRUE(thumb->body == first) << "node " << id << " rendered other bytes";
    const std::string etag = thumb->Header("etag");
    ASSERT_FALSE(etag.empty());
    auto again =
        HttpCall(port, "GET", "/music/covers/" + red + "?size=64", "", "If-None-Match: " + etag + "\r\n");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304);
    auto big = HttpCall(port, "GET", "/music/covers/" + blue + "?size=1024");
    ASSERT_TRUE(big);
    ASSERT_EQ(big->status, 200) << big->body.substr(0, 300);
    EXPECT_EQ(testing_jpeg::JpegSize(big->body), std::make_pair(200, 200)) << "a PNG, not upscaled";
    auto fallback = HttpCall(port, "GET", "/music/covers/" + blue);
    ASSERT_TRUE(fallback);
    EXPECT_EQ(testing_jpeg::JpegSize(fallback->body), std::make_pair(200, 200)) << "default 256";
  }
  // Bad names and sizes are 400, an unknown cover 404.
  for (const std::string& target : {"/music/covers/" + red + "?size=100", "/music/covers/" + red + "?size=x",
                                    "/music/covers/" + std::string(64, 'A'), "/music/covers/" + red.substr(1),
                                    std::string("/music/covers/..%2f..%2fetc")}) {
    auto bad = HttpCall(port1, "GET", target);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400) << target << ": " << bad->body;
  }
  auto unknown = HttpCall(port1, "GET", "/music/covers/" + std::string(64, 'f'));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
}

}  // namespace
}  // namespace dispotify::e2e
