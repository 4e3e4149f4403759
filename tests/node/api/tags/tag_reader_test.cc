#include "node/api/tags/tag_reader.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/mocks/temp_dir.h"
#include "tests/support/audio_files.h"
#include "tests/support/bytes.h"
#include "tests/support/jpeg.h"

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

using testing_bytes::Bytes;

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

// ---- cover pictures ------------------------------------------------------------------------------

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr), 1);
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back("0123456789abcdef"[digest[i] >> 4]);
    out.push_back("0123456789abcdef"[digest[i] & 0x0F]);
  }
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool HaveFfmpeg() {
  return std::system("command -v ffmpeg >/dev/null 2>&1") == 0;  // NOLINT(concurrency-mt-unsafe)
}

// Runs ffmpeg quietly; the paths in `args` are the test's own and need no quoting.
bool Ffmpeg(const std::string& args) {
  const std::string command = "ffmpeg -nostdin -loglevel error -y " + args;
  return std::system(command.c_str()) == 0;  // NOLINT(concurrency-mt-unsafe)
}

// `mp3` (from MakeMp3) with ID3v2.4 APIC frames: {picture type, picture bytes}, in that order.
// The MIME field says PNG whatever the bytes are: the tagger must look at the bytes.
std::string WithPictures(const std::string& mp3, const std::vector<std::pair<int, std::string>>& pictures) {
  auto synchsafe = [](uint32_t n) {
    std::string out;
    for (int shift : {21, 14, 7, 0}) out.push_back(static_cast<char>((n >> shift) & 0x7F));
    return out;
  };
  std::string frames;
  for (const auto& [type, bytes] : pictures) {
    const std::string body = std::string("\x00image/png\0", 11) + static_cast<char>(type) + '\0' + bytes;
    frames += "APIC" + synchsafe(static_cast<uint32_t>(body.size())) + std::string(2, '\0') + body;
  }
  uint32_t size = 0;
  for (int i = 6; i < 10; ++i) size = (size << 7) | static_cast<uint32_t>(mp3[static_cast<size_t>(i)] & 0x7F);
  std::string out = mp3;
  out.insert(10 + size, frames);
  return out.replace(6, 4, synchsafe(size + static_cast<uint32_t>(frames.size())));
}

// The body of a FLAC PICTURE block, also the value of a Vorbis comment METADATA_BLOCK_PICTURE
// (base64).
std::string PictureBlock(int type, const std::string& bytes) {
  auto be32 = [](std::string& out, uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  std::string body;
  be32(body, static_cast<uint32_t>(type));
  be32(body, 9);
  body += "image/png";
  be32(body, 0);                              // description
  for (int i = 0; i < 4; ++i) be32(body, 0);  // width, height, depth, colours: not checked
  be32(body, static_cast<uint32_t>(bytes.size()));
  return body + bytes;
}

// A FLAC file (as FlacWithComments) with PICTURE blocks: {picture type, bytes}.
std::string FlacWithPictures(const std::vector<std::pair<int, std::string>>& pictures) {
  std::string flac = FlacWithComments({"TITLE=Pictures"});
  const size_t comment_header = flac.find('\x84');  // the VORBIS_COMMENT block, flagged last
  flac[comment_header] = '\x04';
  std::string blocks;
  for (size_t k = 0; k < pictures.size(); ++k) {
    const auto& [type, bytes] = pictures[k];
    const std::string body = PictureBlock(type, bytes);
    blocks.push_back(static_cast<char>((k + 1 == pictures.size() ? 0x80 : 0x00) | 6));
    for (int i = 2; i >= 0; --i) blocks.push_back(static_cast<char>((body.size() >> (8 * i)) & 0xFF));
    blocks += body;
  }
  // The frames stand-in (zeros) follows the metadata blocks.
  const size_t frames = flac.size() - 2000;
  return flac.insert(frames, blocks);
}

// An Ogg Opus file (as MakeOpus) whose comments hold METADATA_BLOCK_PICTURE fields.
std::string OpusWithPictures(const std::vector<std::pair<int, std::string>>& pictures) {
  auto le32 = [](std::string& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  std::vector<std::string> fields = {"TITLE=Opus Pictures"};
  for (const auto& [type, bytes] : pictures) {
    const std::string block = PictureBlock(type, bytes);
    std::string base64(4 * ((block.size() + 2) / 3) + 1, '\0');
    const int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64.data()),
                        reinterpret_cast<const unsigned char*>(block.data()), static_cast<int>(block.size()));
    base64.resize(static_cast<size_t>(n));
    fields.push_back("METADATA_BLOCK_PICTURE=" + base64);
  }
  std::string tags = "OpusTags";
  le32(tags, 4);
  tags += "test";
  le32(tags, static_cast<uint32_t>(fields.size()));
  for (const std::string& f : fields) {
    le32(tags, static_cast<uint32_t>(f.size()));
    tags += f;
  }
  // MakeOpus's pages are OpusHead, OpusTags and one audio page: the comments page is replaced.
  const std::string opus = MakeOpus(500);
  const size_t second = opus.find("OggS", 4);
  const size_t third = opus.find("OggS", second + 4);
  return opus.substr(0, second) + testing_audio::OggPage(0x00, 0, 1, tags) + opus.substr(third);
}

// Bytes that start like each image type and are nothing more: enough for the tags' hash.
const std::string kFakePng = std::string("\x89PNG\r\n\x1A\n", 8) + "png body";
const std::string kFakeJpeg = "\xFF\xD8\xFF\xE0jpeg body";
const std::string kFakeWebp = std::string("RIFF\x10\0\0\0WEBPVP8 ", 16) + "webp body";
const std::string kFakeGif = "GIF89a gif body";

TEST_F(TagReaderTest, CoverOfFilesMadeByFfmpeg) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "ffmpeg is not installed";
  const std::string mp3 = dir_.Sub("cover.mp3");
  ASSERT_TRUE(
      Ffmpeg("-f lavfi -i sine=d=1 -f lavfi -i color=c=red:s=300x300:d=1 -map 0:a -map 1:v -frames:v 1 "
             "-c:v mjpeg -disposition:v attached_pic " +
             mp3));
  const std::string picture_path = dir_.Sub("pic.jpg");
  ASSERT_TRUE(Ffmpeg("-i " + mp3 + " -an -c:v copy " + picture_path));
  const std::string picture = ReadAll(picture_path);
  ASSERT_GT(picture.size(), 100U);

  Result<AudioTags> tags = ReadTags(mp3, Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(picture));
  EXPECT_EQ(tags->cover_type, "image/jpeg");

  Result<std::string> cover = RenderCover(mp3, 64, Options());
  ASSERT_TRUE(cover.ok()) << cover.status().ToString();
  EXPECT_EQ(cover->substr(0, 3), "\xFF\xD8\xFF");
  EXPECT_EQ(testing_jpeg::JpegSize(*cover), std::make_pair(64, 64));

  // The same picture in a FLAC file, muxed by ffmpeg: the same hash.
  const std::string flac = dir_.Sub("cover.flac");
  ASSERT_TRUE(Ffmpeg("-f lavfi -i sine=d=1 -i " + picture_path +
                     " -map 0:a -map 1:v -c:v copy -disposition:v attached_pic " + flac));
  tags = ReadTags(flac, Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "flac");
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(picture));
  EXPECT_EQ(tags->cover_type, "image/jpeg");
  cover = RenderCover(flac, 100, Options());
  ASSERT_TRUE(cover.ok()) << cover.status().ToString();
  EXPECT_EQ(testing_jpeg::JpegSize(*cover), std::make_pair(100, 100));

  // And in an MP4 (the covr atom).
  const std::string m4a = dir_.Sub("cover.m4a");
  ASSERT_TRUE(Ffmpeg("-f lavfi -i sine=d=1 -i " + picture_path +
                     " -map 0:a -map 1:v -c:a aac -c:v copy -disposition:v attached_pic " + m4a));
  tags = ReadTags(m4a, Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "m4a");
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(picture));
  EXPECT_EQ(tags->cover_type, "image/jpeg");
}

TEST_F(TagReaderTest, CoverIsTheFrontCoverElseTheFirstPicture) {
  // FLAC picture blocks: type 0 (other), then 3 (front cover).
  Result<AudioTags> tags =
      ReadTags(Write("two.flac", FlacWithPictures({{0, kFakePng}, {3, kFakeJpeg}})), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->title, "Pictures");
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(kFakeJpeg));
  EXPECT_EQ(tags->cover_type, "image/jpeg");
  // No front cover: the first one.
  tags = ReadTags(Write("back.flac", FlacWithPictures({{4, kFakePng}, {0, kFakeJpeg}})), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(kFakePng));
  EXPECT_EQ(tags->cover_type, "image/png");

  // Vorbis comments (Opus): the same rule.
  tags = ReadTags(Write("two.opus", OpusWithPictures({{5, kFakeJpeg}, {3, kFakePng}})), Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->format, "opus");
  EXPECT_EQ(tags->title, "Opus Pictures");
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(kFakePng));
  EXPECT_EQ(tags->cover_type, "image/png");

  // ID3v2 APIC frames, whose MIME field (image/png) is not what the bytes are.
  tags = ReadTags(Write("two.mp3", WithPictures(MakeMp3("Pics", 20), {{0, kFakeJpeg}, {3, kFakeWebp}})),
                  Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->title, "Pics");
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(kFakeWebp));
  EXPECT_EQ(tags->cover_type, "image/webp");
}

TEST_F(TagReaderTest, NoUsableCoverGivesEmptyFields) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"plain.mp3", MakeMp3("Plain", 20)},
      {"plain.wav", MakeWav(8000, 1, 100)},
      {"plain.flac", MakeFlac(44100, 2, 44100)},
      {"plain.opus", MakeOpus(500)},
      // The chosen picture is a GIF: no fallback to another one.
      {"gif.flac", FlacWithPictures({{3, kFakeGif}, {0, kFakeJpeg}})},
      {"gif.mp3", WithPictures(MakeMp3("Gif", 20), {{3, kFakeGif}})},
      {"empty.mp3", WithPictures(MakeMp3("Empty", 20), {{3, ""}})},
  };
  for (const auto& [name, bytes] : files) {
    Result<AudioTags> tags = ReadTags(Write(name, bytes), Options());
    ASSERT_TRUE(tags.ok()) << name << ": " << tags.status().ToString();
    EXPECT_EQ(tags->cover_sha256, "") << name;
    EXPECT_EQ(tags->cover_type, "") << name;
    Result<std::string> cover = RenderCover(dir_.Sub(name), 64, Options());
    EXPECT_EQ(cover.status().code(), StatusCode::kNotFound) << name << ": " << cover.status().ToString();
  }
}

TEST_F(TagReaderTest, CoverOfAnImageFileIsNeverEnlarged) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "ffmpeg is not installed";
  const std::string png = dir_.Sub("small.png");
  ASSERT_TRUE(Ffmpeg("-f lavfi -i color=c=blue:s=100x50 -frames:v 1 " + png));
  Result<std::string> cover = RenderCover(png, 256, Options());
  ASSERT_TRUE(cover.ok()) << cover.status().ToString();
  EXPECT_EQ(testing_jpeg::JpegSize(*cover), std::make_pair(100, 50));
  // Larger: fitted into the square, aspect ratio kept.
  cover = RenderCover(png, 40, Options());
  ASSERT_TRUE(cover.ok()) << cover.status().ToString();
  EXPECT_EQ(testing_jpeg::JpegSize(*cover), std::make_pair(40, 20));
}

TEST_F(TagReaderTest, CoverOfWhatIsNeitherAudioNorImage) {
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"random.jpg", Bytes(5000, 3)}, {"notes.png", "not a picture\n"}, {"fake.jpg", kFakeJpeg}}) {
    Result<std::string> cover = RenderCover(Write(name, bytes), 64, Options());
    ASSERT_FALSE(cover.ok()) << name;
    EXPECT_EQ(cover.status().code(), StatusCode::kInvalidArgument)
        << name << ": " << cover.status().ToString();
  }
  EXPECT_EQ(RenderCover(dir_.Sub("missing.mp3"), 64, Options()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RenderCover(dir_.path(), 64, Options()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TagReaderTest, TruncatedCoverIsInvalidNeverACrash) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "ffmpeg is not installed";
  const std::string jpeg_path = dir_.Sub("detailed.jpg");
  ASSERT_TRUE(Ffmpeg("-f lavfi -i testsrc=s=300x300 -frames:v 1 " + jpeg_path));
  const std::string jpeg = ReadAll(jpeg_path);
  ASSERT_GT(jpeg.size(), 4000U);
  const std::string truncated = jpeg.substr(0, jpeg.size() / 3);

  const std::string mp3 = Write("truncated.mp3", WithPictures(MakeMp3("Cut", 20), {{3, truncated}}));
  Result<AudioTags> tags = ReadTags(mp3, Options());
  ASSERT_TRUE(tags.ok()) << tags.status().ToString();
  EXPECT_EQ(tags->cover_sha256, Sha256Hex(truncated));  // the tags do not decode the picture
  Result<std::string> cover = RenderCover(mp3, 64, Options());
  ASSERT_FALSE(cover.ok());
  EXPECT_EQ(cover.status().code(), StatusCode::kInvalidArgument) << cover.status().ToString();

  cover = RenderCover(Write("truncated.jpg", truncated), 64, Options());
  ASSERT_FALSE(cover.ok());
  EXPECT_EQ(cover.status().code(), StatusCode::kInvalidArgument) << cover.status().ToString();

  // The whole picture, embedded the same way, renders.
  cover = RenderCover(Write("whole.mp3", WithPictures(MakeMp3("Whole", 20), {{3, jpeg}})), 64, Options());
  ASSERT_TRUE(cover.ok()) << cover.status().ToString();
  EXPECT_EQ(testing_jpeg::JpegSize(*cover), std::make_pair(64, 64));
}

TEST_F(TagReaderTest, CoverSizeOutOfRange) {
  const std::string mp3 = Write("a.mp3", MakeMp3("x", 20));
  for (uint32_t size : {0U, 15U, 2049U, 100000U}) {
    EXPECT_EQ(RenderCover(mp3, size, Options()).status().code(), StatusCode::kInvalidArgument) << size;
  }
}

TEST_F(TagReaderTest, CoverModeIsSandboxedLikeTags) {
  const std::string path = Write("a.mp3", MakeMp3("x", 20));
  for (const char* hook : {"--test-crash", "--test-garbage", "--test-inspect"}) {
    Result<std::string> cover = RenderCover(path, 64, TestHook(hook));
    ASSERT_FALSE(cover.ok()) << hook;
    EXPECT_EQ(cover.status().code(), StatusCode::kInvalidArgument) << hook;
    EXPECT_EQ(cover.status().message(), "the file's cover could not be rendered safely") << hook;
  }
  TagReaderOptions flood = TestHook("--test-flood");
  flood.max_cover_bytes = 1 << 20;
  EXPECT_EQ(RenderCover(path, 64, flood).status().code(), StatusCode::kInvalidArgument);
  TagReaderOptions sleep = TestHook("--test-sleep");
  sleep.timeout = std::chrono::milliseconds(300);
  Result<std::string> cover = RenderCover(path, 64, sleep);
  EXPECT_EQ(cover.status().code(), StatusCode::kTimeout);
  EXPECT_EQ(cover.status().message(), "rendering the file's cover timed out");
  TagReaderOptions missing;
  missing.tagger_path = dir_.Sub("no-such-tagger");
  EXPECT_EQ(RenderCover(path, 64, missing).status().code(), StatusCode::kUnavailable);
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

TEST(ParseTaggerOutputTest, ParsesTheCoverFields) {
  const std::string sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  Result<AudioTags> t =
      ParseTaggerOutput(R"({"format":"mp3","cover_sha256":")" + sha + R"(","cover_type":"image/png"})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->cover_sha256, sha);
  EXPECT_EQ(t->cover_type, "image/png");
  t = ParseTaggerOutput(R"({"format":"mp3","cover_sha256":"","cover_type":""})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->cover_sha256, "");
  const std::vector<std::string> bad_lines = {
      R"({"format":"mp3","cover_sha256":")" + sha.substr(1) + R"(","cover_type":"image/png"})",  // 63
      R"({"format":"mp3","cover_sha256":")" + sha + R"(0","cover_type":"image/png"})",           // 65
      R"({"format":"mp3","cover_sha256":"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",)"
      R"("cover_type":"image/png"})",
      R"({"format":"mp3","cover_sha256":"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",)"
      R"("cover_type":"image/png"})",
      R"({"format":"mp3","cover_sha256":")" + sha + R"(","cover_type":"image/gif"})",
      R"({"format":"mp3","cover_sha256":")" + sha + R"(","cover_type":"IMAGE/JPEG"})",
      R"({"format":"mp3","cover_sha256":")" + sha + R"(","cover_type":"image/jpeg "})",
      R"({"format":"mp3","cover_sha256":")" + sha + R"(","cover_type":7})",
      R"({"format":"mp3","cover_sha256":")" + sha + R"("})",  // no type
      R"({"format":"mp3","cover_type":"image/jpeg"})",        // no hash
      R"({"format":"mp3","cover_sha256":"","cover_sha256":""})",
  };
  for (const std::string& bad : bad_lines) {
    Result<AudioTags> r = ParseTaggerOutput(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
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
