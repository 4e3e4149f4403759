#include "node/api/tags/tag_reader.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/mocks/temp_dir.h"
#include "tests/support/audio_files.h"

namespace dispotify::api::tags {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif

using testing_audio::kMp3FrameBytes;
using testing_audio::MakeFlac;
using testing_audio::MakeMp3;
using testing_audio::MakeOpus;
using testing_audio::MakeWav;
using testing_audio::WithId3Frames;

std::string Bytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

// ---- process hygiene ------------------------------------------------------------------------------

int CountOpenFds() {
  int n = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory's own fd
}

// True if this process has no child at all, not even a zombie.
bool NoChildren() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

class TagReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fds_before_ = CountOpenFds();
    ASSERT_TRUE(NoChildren());
  }
  void TearDown() override {
    EXPECT_TRUE(NoChildren()) << "a tagger child was left behind";
    EXPECT_EQ(CountOpenFds(), fds_before_) << "file descriptors leaked";
  }

  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_.Sub(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  static TagReaderOptions Options() {
    TagReaderOptions o;
    o.tagger_path = DISPOTIFY_TAGGER_PATH;
    return o;
  }
  static TagReaderOptions TestHook(const std::string& flag) {
    TagReaderOptions o = Options();
    o.extra_args = {flag};
    o.extra_env = {"DISPOTIFY_TAGGER_TEST=1"};
    return o;
  }

  mocks::TempDir dir_;
  int fds_before_ = 0;
};

// ---- real files ---------------------------------------------------------------------------------

TEST_F(TagReaderTest, ReadsWavInfoTags) {
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(44100, 2, 1500)), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "wav");
  EXPECT_EQ(tags->title, "Wave Title");
  EXPECT_EQ(tags->artist, "Wave Artist");
  EXPECT_EQ(tags->album, "Wave Album");
  EXPECT_EQ(tags->track, 4U);
  EXPECT_EQ(tags->year, 2001U);
  EXPECT_EQ(tags->duration_ms, 1500U);
  EXPECT_EQ(tags->sample_rate, 44100U);
  EXPECT_EQ(tags->channels, 2U);
  EXPECT_EQ(tags->bitrate_kbps, 1411U);
}

TEST_F(TagReaderTest, ReadsMp3Id3v2TagsAndEscapesText) {
  // A quote, a backslash and a control character (dropped by the tagger), and non-ASCII text.
  const std::string title = "Say \"hi\" \\ \x01G\xC3\xBCnther";
  Result<AudioTags> tags = ReadTags(Write("b.mp3", MakeMp3(title, 100)), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "mp3");
  EXPECT_EQ(tags->title, "Say \"hi\" \\ G\xC3\xBCnther");
  EXPECT_EQ(tags->artist, "MP3 Artist");
  EXPECT_EQ(tags->album, "MP3 Album");
  EXPECT_EQ(tags->track, 7U);
  EXPECT_EQ(tags->year, 2019U);
  // 100 frames x 1152 samples / 44100 Hz = 2612 ms; TagLib estimates from size / bitrate: 2606.
  EXPECT_NEAR(static_cast<double>(tags->duration_ms), 2610, 30);
  EXPECT_EQ(tags->bitrate_kbps, 128U);
  EXPECT_EQ(tags->sample_rate, 44100U);
  EXPECT_EQ(tags->channels, 2U);
}

TEST_F(TagReaderTest, ReadsFlacVorbisComments) {
  Result<AudioTags> tags = ReadTags(Write("c.flac", MakeFlac(48000, 1, 48000 * 3 + 24000)), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "flac");
  EXPECT_EQ(tags->title, "Sn\xC3\xB8 \xE2\x98\x83");
  EXPECT_EQ(tags->artist, "Flac Artist");
  EXPECT_EQ(tags->album, "Flac Album");
  EXPECT_EQ(tags->track, 3U);
  EXPECT_EQ(tags->year, 1999U);
  EXPECT_EQ(tags->duration_ms, 3500U);
  EXPECT_EQ(tags->sample_rate, 48000U);
  EXPECT_EQ(tags->channels, 1U);
}

// A FLAC file (STREAMINFO + VORBIS_COMMENT, as MakeFlac) with the given comments.
std::string FlacWithComments(const std::vector<std::string>& fields) {
  auto be = [](std::string& out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  auto le32 = [](std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  std::string out = "fLaC";
  std::string info;
  be(info, 4096, 2);
  be(info, 4096, 2);
  be(info, 0, 3);
  be(info, 0, 3);
  be(info, (uint64_t{44100} << 44) | (uint64_t{1} << 41) | (uint64_t{15} << 36) | 44100, 8);
  info += std::string(16, '\0');
  out.push_back('\x00');
  be(out, info.size(), 3);
  out += info;
  std::string comments;
  le32(comments, 4);
  comments += "test";
  le32(comments, static_cast<uint32_t>(fields.size()));
  for (const std::string& f : fields) {
    le32(comments, static_cast<uint32_t>(f.size()));
    comments += f;
  }
  out.push_back('\x84');
  be(out, comments.size(), 3);
  out += comments;
  return out + std::string(2000, '\0');
}

// Album artist, disc, genre and the compilation flag, from ID3v2 (TPE2, TPOS, TCON, TCMP) and
// Vorbis comments (ALBUMARTIST, DISCNUMBER, GENRE, COMPILATION).
TEST_F(TagReaderTest, ReadsAlbumArtistDiscGenreAndCompilation) {
  const std::string mp3 =
      WithId3Frames(MakeMp3("Track", 20),
                    {{"TPE2", "Various Artists"}, {"TPOS", "2/3"}, {"TCON", "Synth-pop"}, {"TCMP", "1"}});
  Result<AudioTags> tags = ReadTags(Write("lib.mp3", mp3), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->title, "Track");
  EXPECT_EQ(tags->artist, "MP3 Artist");
  EXPECT_EQ(tags->album_artist, "Various Artists");
  EXPECT_EQ(tags->disc, 2U);
  EXPECT_EQ(tags->genre, "Synth-pop");
  EXPECT_TRUE(tags->compilation);

  tags = ReadTags(Write("lib.flac", FlacWithComments({"TITLE=T", "ARTIST=Guest", "ALBUMARTIST=Band \xC3\xA9",
                                                      "DISCNUMBER=4", "GENRE=Jazz", "COMPILATION=0"})),
                  Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->album_artist, "Band \xC3\xA9");
  EXPECT_EQ(tags->disc, 4U);
  EXPECT_EQ(tags->genre, "Jazz");
  EXPECT_FALSE(tags->compilation);

  // Untagged: empty, 0 and false.
  tags = ReadTags(Write("plain.mp3", MakeMp3("Plain", 20)), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->album_artist, "");
  EXPECT_EQ(tags->disc, 0U);
  EXPECT_EQ(tags->genre, "");
  EXPECT_FALSE(tags->compilation);
}

TEST_F(TagReaderTest, ReadsOggOpusTags) {
  Result<AudioTags> tags = ReadTags(Write("d.opus", MakeOpus(2000)), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "opus");
  EXPECT_EQ(tags->title, "Opus Title");
  EXPECT_EQ(tags->artist, "Opus Artist");
  EXPECT_EQ(tags->album, "Opus Album");
  EXPECT_EQ(tags->track, 9U);
  EXPECT_EQ(tags->year, 2023U);
  EXPECT_EQ(tags->duration_ms, 2000U);
  EXPECT_EQ(tags->sample_rate, 48000U);
  EXPECT_EQ(tags->channels, 2U);
}

TEST_F(TagReaderTest, DetectsTheFormatByContentNotByName) {
  Result<AudioTags> mp3 = ReadTags(Write("really-an-mp3.wav", MakeMp3("x", 20)), Options());
  ASSERT_TRUE(mp3.ok()) << mp3.status().ToString();
  EXPECT_EQ(mp3->format, "mp3");
  Result<AudioTags> flac = ReadTags(Write("no-extension", MakeFlac(44100, 2, 44100)), Options());
  ASSERT_TRUE(flac.ok()) << flac.status().ToString();
  EXPECT_EQ(flac->format, "flac");
}

// ---- not audio ----------------------------------------------------------------------------------

TEST_F(TagReaderTest, RejectsFilesThatAreNotAudio) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"random.mp3", Bytes(64 << 10, 1)},
      {"random.flac", Bytes(3000, 2)},
      {"notes.mp3", "These are not the songs you are looking for.\n"},
      {"empty.wav", ""},
      {"fake.wav", "RIFF\x10\0\0\0WAVEjunk"},
  };
  for (const auto& [name, bytes] : files) {
    Result<AudioTags> tags = ReadTags(Write(name, bytes), Options());
    ASSERT_FALSE(tags.ok()) << name;
    EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(tags.status().message(), "not a recognised audio file") << name;
  }
}

TEST_F(TagReaderTest, TruncatedFilesAreRejectedOrReadShorter) {
  const std::string mp3 = MakeMp3("Truncated", 100);
  const std::string wav = MakeWav(8000, 1, 1000);
  const std::string flac = MakeFlac(44100, 2, 44100);
  // Cut inside the headers: nothing left to read.
  for (const std::string& cut : {mp3.substr(0, 30), wav.substr(0, 30), flac.substr(0, 30)}) {
    Result<AudioTags> tags = ReadTags(Write("cut", cut), Options());
    ASSERT_FALSE(tags.ok());
    EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
  }
  // Cut inside the audio: the tags survive, the stream is shorter.
  Result<AudioTags> half = ReadTags(Write("half.mp3", mp3.substr(0, mp3.size() / 2)), Options());
  ASSERT_TRUE(half.ok()) << half.status().ToString();
  EXPECT_EQ(half->title, "Truncated");
  EXPECT_LT(half->duration_ms, 2000U);
}

TEST_F(TagReaderTest, CorruptedFilesNeverHurtTheCaller) {
  const std::vector<std::string> originals = {MakeMp3("Fuzz", 10), MakeWav(8000, 1, 100),
                                              MakeFlac(44100, 2, 44100), MakeOpus(500)};
  int files = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    std::string bytes = originals[seed % originals.size()];
    const std::string noise = Bytes(16, seed);
    for (size_t i = 0; i < noise.size(); ++i) {
      bytes[(static_cast<unsigned char>(noise[i]) * 131 + i * 7919 + seed) % bytes.size()] =
          noise[(i + 1) % 16];
    }
    Result<AudioTags> tags = ReadTags(Write("fuzz", bytes), Options());
    if (!tags.ok()) {
      EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument) << tags.status().ToString();
    }
    ++files;
  }
  EXPECT_EQ(files, 40);
}

TEST_F(TagReaderTest, MissingFilesAndDirectories) {
  Result<AudioTags> missing = ReadTags(dir_.Sub("nope.mp3"), Options());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  Result<AudioTags> directory = ReadTags(dir_.path(), Options());
  EXPECT_EQ(directory.status().code(), StatusCode::kInvalidArgument);
}

// ---- a hostile file's effects on the child -------------------------------------------------------

TEST_F(TagReaderTest, CrashIsTheFilesFault) {
  const std::string path = Write("a.wav", MakeWav(8000, 1, 100));
  Result<AudioTags> tags = ReadTags(path, TestHook("--test-crash"));
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tags.status().message(), "the file's tags could not be read safely");
  // The node carries on.
  EXPECT_TRUE(ReadTags(path, Options()).ok());
}

TEST_F(TagReaderTest, HangIsKilledAtTheTimeout) {
  TagReaderOptions options = TestHook("--test-sleep");
  options.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), options);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tags.status().message(), "reading the file's tags timed out");
  EXPECT_GE(elapsed, std::chrono::milliseconds(300));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST_F(TagReaderTest, BusyLoopHitsTheCpuLimit) {
  TagReaderOptions options = TestHook("--test-spin");
  options.cpu_seconds = 1;
  options.timeout = std::chrono::seconds(30);
  const auto start = std::chrono::steady_clock::now();
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), options);
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tags.status().message(), "the file's tags could not be read safely");  // SIGXCPU
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
}

TEST_F(TagReaderTest, MemoryHogHitsTheAddressSpaceLimit) {
  if (kSanitizerBuild) GTEST_SKIP() << "no address-space limit under a sanitizer";
  TagReaderOptions options = TestHook("--test-alloc");
  options.address_space_bytes = uint64_t{256} << 20;
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), options);
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tags.status().message(), "the file's tags could not be read safely");
}

TEST_F(TagReaderTest, EndlessOutputIsCut) {
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), TestHook("--test-flood"));
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TagReaderTest, MalformedOutputIsRejected) {
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), TestHook("--test-garbage"));
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TagReaderTest, TestHooksNeedTheEnvironmentVariable) {
  TagReaderOptions options = TestHook("--test-crash");
  options.extra_env.clear();
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), options);
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kUnavailable);
}

TEST_F(TagReaderTest, ChildRunsWithNullStdinNoInheritedFdsAndLimits) {
  // An fd of ours without O_CLOEXEC must not reach the child either.
  int leaky = ::dup(0);
  ASSERT_GE(leaky, 0);
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), TestHook("--test-inspect"));
  ::close(leaky);
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "inspect");
  EXPECT_EQ(tags->title, "0 1 2");  // the child's open fds
  EXPECT_EQ(tags->artist, "/dev/null");
#if defined(__SANITIZE_THREAD__)
  // The ThreadSanitizer runtime needs to write a file in the child: no fsize limit there.
  EXPECT_NE(tags->album.find("nofile=32 core=0 fsize=inf cpu=5 "), std::string::npos) << tags->album;
#else
  EXPECT_NE(tags->album.find("nofile=32 core=0 fsize=0 cpu=5 "), std::string::npos) << tags->album;
#endif
  if (!kSanitizerBuild) {
    EXPECT_NE(tags->album.find("as=536870912"), std::string::npos) << tags->album;
  }
}

// ---- the tagger binary --------------------------------------------------------------------------

TEST_F(TagReaderTest, MissingTaggerIsUnavailable) {
  TagReaderOptions options;
  options.tagger_path = dir_.Sub("no-such-tagger");
  Result<AudioTags> tags = ReadTags(Write("a.wav", MakeWav(8000, 1, 100)), options);
  ASSERT_FALSE(tags.ok());
  EXPECT_EQ(tags.status().code(), StatusCode::kUnavailable);
}

TEST_F(TagReaderTest, TaggerIsBuiltBesideTheNode) {
  EXPECT_NE(std::string(DISPOTIFY_TAGGER_PATH).find("/node/server/dispotify-tagger"), std::string::npos);
  std::string exe_dir;
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf));
  ASSERT_GT(n, 0);
  exe_dir.assign(buf, static_cast<size_t>(n));
  exe_dir.resize(exe_dir.rfind('/'));
  EXPECT_EQ(DefaultTaggerPath(), exe_dir + "/dispotify-tagger");
}

// ---- many uploads at once -----------------------------------------------------------------------

TEST_F(TagReaderTest, ConcurrentReads) {
  const std::string wav = Write("a.wav", MakeWav(22050, 2, 700));
  const std::string mp3 = Write("b.mp3", MakeMp3("Concurrent", 40));
  const std::string junk = Write("c.bin", Bytes(5000, 9));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) {
        switch ((t + i) % 4) {
          case 0: {
            Result<AudioTags> r = ReadTags(wav, Options());
            if (!r.ok() || r->duration_ms != 700) ++failures;
            break;
          }
          case 1: {
            Result<AudioTags> r = ReadTags(mp3, Options());
            if (!r.ok() || r->title != "Concurrent") ++failures;
            break;
          }
          case 2: {
            Result<AudioTags> r = ReadTags(junk, Options());
            if (r.ok() || r.status().code() != StatusCode::kInvalidArgument) ++failures;
            break;
          }
          default: {
            Result<AudioTags> r = ReadTags(wav, TestHook("--test-crash"));
            if (r.ok() || r.status().code() != StatusCode::kInvalidArgument) ++failures;
            break;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- the JSON line ------------------------------------------------------------------------------

TEST(ParseTaggerOutputTest, ParsesTheFlatObject) {
  Result<AudioTags> t = ParseTaggerOutput(
      R"({"format":"mp3","title":"A \"b\" \\ \/ \u00e9 \ud83c\udfb5","artist":"","album":"X","track":12,)"
      R"("year":2020,"duration_ms":12345678901,"bitrate_kbps":320,"sample_rate":44100,"channels":2,"extra":1})"
      "\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->format, "mp3");
  EXPECT_EQ(t->title, "A \"b\" \\ / \xC3\xA9 \xF0\x9F\x8E\xB5");
  EXPECT_EQ(t->album, "X");
  EXPECT_EQ(t->track, 12U);
  EXPECT_EQ(t->year, 2020U);
  EXPECT_EQ(t->duration_ms, 12345678901U);
  EXPECT_EQ(t->bitrate_kbps, 320U);
  EXPECT_EQ(t->sample_rate, 44100U);
  EXPECT_EQ(t->channels, 2U);
}

TEST(ParseTaggerOutputTest, ParsesTheLibraryFields) {
  Result<AudioTags> t = ParseTaggerOutput(
      R"({"format":"flac","album_artist":"Various Artists","genre":"Rock","disc":2,"compilation":1})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->album_artist, "Various Artists");
  EXPECT_EQ(t->genre, "Rock");
  EXPECT_EQ(t->disc, 2U);
  EXPECT_TRUE(t->compilation);
  // A tagger of the previous version prints none of them: defaults.
  t = ParseTaggerOutput(R"({"format":"mp3","title":"x"})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->album_artist, "");
  EXPECT_EQ(t->disc, 0U);
  EXPECT_FALSE(t->compilation);
  for (const char* bad :
       {R"({"format":"mp3","compilation":2})", R"({"format":"mp3","disc":"2"})",
        R"({"format":"mp3","genre":1})", R"({"format":"mp3","album_artist":"a","album_artist":"b"})"}) {
    EXPECT_FALSE(ParseTaggerOutput(bad).ok()) << bad;
  }
}

TEST(ParseTaggerOutputTest, RejectsAnythingElse) {
  const std::vector<std::string> bad = {
      "",
      "{}",
      R"({"title":"no format"})",
      R"({"format":""})",
      R"({"format":"mp3","format":"wav"})",
      R"({"format":"mp3","track":-1})",
      R"({"format":"mp3","track":1.5})",
      R"({"format":"mp3","track":01})",
      R"({"format":"mp3","track":4294967296})",
      R"({"format":"mp3","duration_ms":18446744073709551616})",
      R"({"format":"mp3","title":7})",
      R"({"format":"mp3","track":"7"})",
      R"({"format":"mp3","title":"\u0000"})",
      R"({"format":"mp3","title":"\ud800"})",
      R"({"format":"mp3","title":"\udc00"})",
      R"({"format":"mp3","title":"\x"})",
      "{\"format\":\"mp3\",\"title\":\"\xC3\"}",
      "{\"format\":\"mp3\",\"title\":\"a\nb\"}",
      R"({"format":"mp3",})",
      R"({"format":"mp3"} {)",
      R"({"format":"mp3")",
      R"(["mp3"])",
  };
  for (const std::string& text : bad) {
    Result<AudioTags> t = ParseTaggerOutput(text);
    EXPECT_FALSE(t.ok()) << text;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
}

}  // namespace
}  // namespace dispotify::api::tags
