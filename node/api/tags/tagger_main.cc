// dispotify-tagger: prints the audio tags of one file as one line of JSON (the protocol is in
// tag_reader.h). Runs TagLib, which must not run inside the node: ReadTags starts one of these per
// file, with resource limits, and treats any crash or hang as a bad file.
//
// Usage: dispotify-tagger [test flags] [--] <path>
//        dispotify-tagger [test flags] --cover SIZE [--] <path>
// The second form writes the file's cover as a JPEG that fits into SIZE x SIZE (16 to 2048) to
// stdout; <path> is an audio file (its picture is chosen as for cover_sha256, picture.h) or a
// JPEG, PNG or WebP image itself. libvips decodes it, in this process for the same reason TagLib
// runs here.
// Single-threaded, but for libvips's worker in --cover mode, which is idle whenever we exit: the C
// library's exit, getenv and friends are safe here.
// Exit: 0 tags or cover printed; 2 bad arguments; 3 not audio (nor, with --cover, an image),
// unreadable, or a picture that does not decode; 4 (--cover only) no usable picture. A message is
// on stderr for every exit but 0.
//
// Test flags (only with DISPOTIFY_TAGGER_TEST=1 in the environment, refused otherwise) stand in
// for what a crafted file can do to TagLib: --test-crash (abort), --test-spin (burn CPU),
// --test-sleep (hang without CPU), --test-alloc (exhaust memory), --test-flood (endless output),
// --test-garbage (malformed JSON), --test-inspect (report the child's fds and limits as JSON).

#include <dirent.h>
#include <sys/resource.h>
#include <taglib/audioproperties.h>
#include <taglib/fileref.h>
#include <taglib/flacfile.h>
#include <taglib/id3v2framefactory.h>
#include <taglib/id3v2tag.h>
#include <taglib/infotag.h>
#include <taglib/mp4file.h>
#include <taglib/mpegfile.h>
#include <taglib/opusfile.h>
#include <taglib/tfilestream.h>
#include <taglib/tpropertymap.h>
#include <taglib/vorbisfile.h>
#include <taglib/wavfile.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "node/api/tags/picture.h"

namespace {

using dispotify::api::tags::ChoosePicture;
using dispotify::api::tags::ImageTypeOf;
using dispotify::api::tags::kMaxPictureBytes;
using dispotify::api::tags::Picture;

constexpr int kExitUsage = 2;
constexpr int kExitNotAudio = 3;
constexpr int kExitNoPicture = 4;
constexpr int kMinCoverSize = 16;
constexpr int kMaxCoverSize = 2048;
// Longer tag values are cut (at a character boundary): they are names, not documents.
constexpr size_t kMaxStringBytes = 1024;

[[noreturn]] void Fail(int code, const std::string& message) {
  std::fprintf(stderr, "dispotify-tagger: %s\n", message.c_str());
  std::exit(code);
}

// Appends `in` as the body of a JSON string: invalid UTF-8 becomes U+FFFD, NUL and other control
// characters except tab and newlines are dropped, quote and backslash are escaped. Stops before
// kMaxStringBytes of output.
std::string JsonEscape(std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i < in.size() && out.size() < kMaxStringBytes) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\t': out += "\\t"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        default:
          if (c >= 0x20 && c != 0x7F) out.push_back(static_cast<char>(c));
          break;
      }
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool valid = len > 0 && i + len <= in.size();
    for (size_t k = 1; valid && k < len; ++k) {
      auto cc = static_cast<unsigned char>(in[i + k]);
      valid = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    valid = valid && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) && cp <= 0x10FFFF &&
            !(cp >= 0xD800 && cp <= 0xDFFF);
    if (valid) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD; resynchronise on the next byte
      ++i;
    }
  }
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

struct Fields {
  std::string format, title, artist, album, album_artist, genre, cover_sha256, cover_type;
  uint64_t track = 0, year = 0, duration_ms = 0, bitrate_kbps = 0, sample_rate = 0, channels = 0;
  uint64_t disc = 0, compilation = 0;
};

void Print(const Fields& f) {
  std::string line = "{\"format\":\"" + JsonEscape(f.format) + "\",\"title\":\"" + JsonEscape(f.title) +
                     "\",\"artist\":\"" + JsonEscape(f.artist) + "\",\"album\":\"" + JsonEscape(f.album) +
                     "\",\"track\":" + std::to_string(f.track) + ",\"year\":" + std::to_string(f.year) +
                     ",\"duration_ms\":" + std::to_string(f.duration_ms) +
                     ",\"bitrate_kbps\":" + std::to_string(f.bitrate_kbps) +
                     ",\"sample_rate\":" + std::to_string(f.sample_rate) +
                     ",\"channels\":" + std::to_string(f.channels) + ",\"album_artist\":\"" +
                     JsonEscape(f.album_artist) + "\",\"genre\":\"" + JsonEscape(f.genre) +
                     "\",\"disc\":" + std::to_string(f.disc) +
                     ",\"compilation\":" + std::to_string(f.compilation) + ",\"cover_sha256\":\"" +
                     JsonEscape(f.cover_sha256) + "\",\"cover_type\":\"" + JsonEscape(f.cover_type) + "\"}\n";
  if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() || std::fflush(stdout) != 0) {
    std::exit(1);
  }
}

uint64_t NonNegative(int v) {
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

// ---- test hooks -------------------------------------------------------------------------------

std::string LimitText(int resource) {
  rlimit l{};
  if (getrlimit(resource, &l) != 0) return "?";
  return l.rlim_cur == RLIM_INFINITY ? "inf" : std::to_string(l.rlim_cur);
}

void Inspect() {
  Fields f;
  f.format = "inspect";
  DIR* dir = opendir("/proc/self/fd");
  if (dir != nullptr) {
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) == dirfd(dir)) continue;
      f.title += (f.title.empty() ? "" : " ") + std::string(e->d_name);
    }
    closedir(dir);
  }
  char target[256] = {};
  ssize_t n = readlink("/proc/self/fd/0", target, sizeof(target) - 1);
  if (n > 0) f.artist.assign(target, static_cast<size_t>(n));
  f.album = "nofile=" + LimitText(RLIMIT_NOFILE) + " core=" + LimitText(RLIMIT_CORE) +
            " fsize=" + LimitText(RLIMIT_FSIZE) + " cpu=" + LimitText(RLIMIT_CPU) +
            " as=" + LimitText(RLIMIT_AS);
  Print(f);
}

void RunTestHook(std::string_view flag) {
  if (flag == "--test-crash") std::abort();
  if (flag == "--test-spin") {
    volatile uint64_t x = 0;
    while (true) x = x + 1;
  }
  if (flag == "--test-sleep") {
    while (true) pause();
  }
  if (flag == "--test-alloc") {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 4096; ++i) {  // 4 GiB, written so that it is really committed
      blocks.push_back(std::make_unique<char[]>(size_t{1} << 20));
      std::memset(blocks.back().get(), 1, size_t{1} << 20);
    }
    return;
  }
  if (flag == "--test-flood") {
    std::string chunk(1 << 16, 'x');
    while (std::fwrite(chunk.data(), 1, chunk.size(), stdout) == chunk.size()) {
    }
    std::exit(0);
  }
  if (flag == "--test-garbage") {
    std::fputs("{\"format\":\"mp3\",\"title\":\"\xFF\"}\n", stdout);
    std::exit(0);
  }
  if (flag == "--test-inspect") {
    Inspect();
    std::exit(0);
  }
  Fail(kExitUsage, "unknown flag " + std::string(flag));
}

// ---- reading ------------------------------------------------------------------------------------

struct Format {
  const char* name;
  bool (*is_supported)(TagLib::IOStream*);
  TagLib::File* (*open)(TagLib::IOStream*);
};

constexpr auto kStyle = TagLib::AudioProperties::Average;

// By content, in order: the formats with a fixed signature first, MPEG (a frame-sync scan) last.
constexpr Format kFormats[] = {
    {"wav", TagLib::RIFF::WAV::File::isSupported,
     [](TagLib::IOStream* s) -> TagLib::File* { return new TagLib::RIFF::WAV::File(s, true, kStyle); }},
    {"flac", TagLib::FLAC::File::isSupported,
     [](TagLib::IOStream* s) -> TagLib::File* {
       return new TagLib::FLAC::File(s, TagLib::ID3v2::FrameFactory::instance(), true, kStyle);
     }},
    {"ogg", TagLib::Ogg::Vorbis::File::isSupported,
     [](TagLib::IOStream* s) -> TagLib::File* { return new TagLib::Ogg::Vorbis::File(s, true, kStyle); }},
    {"opus", TagLib::Ogg::Opus::File::isSupported,
     [](TagLib::IOStream* s) -> TagLib::File* { return new TagLib::Ogg::Opus::File(s, true, kStyle); }},
    {"m4a", TagLib::MP4::File::isSupported,
     [](TagLib::IOStream* s) -> TagLib::File* { return new TagLib::MP4::File(s, true, kStyle); }},
    {"mp3", TagLib::MPEG::File::isSupported,
     [](TagLib::IOStream* s) -> TagLib::File* {
       return new TagLib::MPEG::File(s, TagLib::ID3v2::FrameFactory::instance(), true, kStyle);
     }},
};

// The first non-empty value among `tags` (a WAV file has ID3v2 and RIFF INFO tags side by side).
std::string FirstString(const std::vector<TagLib::Tag*>& tags, TagLib::String (TagLib::Tag::*get)() const) {
  for (TagLib::Tag* t : tags) {
    std::string v = Trim((t->*get)().to8Bit(true));
    if (!v.empty()) return v;
  }
  return "";
}

uint64_t FirstNumber(const std::vector<TagLib::Tag*>& tags, unsigned int (TagLib::Tag::*get)() const) {
  for (TagLib::Tag* t : tags) {
    if (unsigned int v = (t->*get)(); v != 0) return v;
  }
  return 0;
}

// The first non-empty value of a unified property of the file (TagLib maps each format's own key
// onto it: ALBUMARTIST is ID3v2's TPE2, MP4's aART; DISCNUMBER is TPOS, disk; COMPILATION is
// TCMP, cpil). File::properties, not Tag::properties: in TagLib 1.x only the former dispatches to
// the format's implementation (the latter is non-virtual and knows only the basic fields).
std::string FirstProperty(const TagLib::PropertyMap& props, const char* key) {
  const auto it = props.find(key);
  if (it == props.end()) return "";
  for (const TagLib::String& value : it->second) {
    std::string v = Trim(value.to8Bit(true));
    if (!v.empty()) return v;
  }
  return "";
}

// The leading decimal number of `text` ("2/3" is disc 2 of 3), 0 when there is none.
uint64_t LeadingNumber(std::string_view text) {
  uint64_t n = 0;
  size_t i = 0;
  for (; i < text.size() && i < 9 && text[i] >= '0' && text[i] <= '9'; ++i) {
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  return n;
}

// Opens `stream` with the TagLib class its content calls for; exits if it is not audio.
TagLib::FileRef OpenAudio(TagLib::FileStream& stream, const Format*& format) {
  format = nullptr;
  for (const Format& f : kFormats) {
    stream.clear();
    stream.seek(0);
    if (f.is_supported(&stream)) {
      format = &f;
      break;
    }
  }
  if (format == nullptr) Fail(kExitNotAudio, "not a recognised audio format");
  stream.clear();
  stream.seek(0);
  TagLib::FileRef ref(format->open(&stream));
  if (ref.isNull() || !ref.file()->isValid()) Fail(kExitNotAudio, std::string("invalid ") + format->name);
  return ref;
}

int ReadFile(const char* path) {
  TagLib::FileStream stream(path, /*openReadOnly=*/true);
  if (!stream.isOpen()) Fail(kExitNotAudio, "cannot open the file");
  const Format* format = nullptr;
  // The stream outlives the FileRef, which owns the File.
  const TagLib::FileRef ref = OpenAudio(stream, format);
  const TagLib::AudioProperties* props = ref.audioProperties();
  if (props == nullptr || (props->sampleRate() <= 0 && props->lengthInMilliseconds() <= 0)) {
    Fail(kExitNotAudio, std::string("no audio stream in the ") + format->name + " file");
  }

  std::vector<TagLib::Tag*> tags;
  if (auto* wav = dynamic_cast<TagLib::RIFF::WAV::File*>(ref.file())) {
    if (wav->hasID3v2Tag()) tags.push_back(wav->ID3v2Tag());
    if (wav->hasInfoTag()) tags.push_back(wav->InfoTag());
  } else if (ref.tag() != nullptr) {
    tags.push_back(ref.tag());
  }

  Fields f;
  f.format = format->name;
  f.title = FirstString(tags, &TagLib::Tag::title);
  f.artist = FirstString(tags, &TagLib::Tag::artist);
  f.album = FirstString(tags, &TagLib::Tag::album);
  f.track = FirstNumber(tags, &TagLib::Tag::track);
  f.year = FirstNumber(tags, &TagLib::Tag::year);
  f.duration_ms = NonNegative(props->lengthInMilliseconds());
  f.bitrate_kbps = NonNegative(props->bitrate());
  f.sample_rate = NonNegative(props->sampleRate());
  f.channels = NonNegative(props->channels());
  const TagLib::PropertyMap props_map = ref.file()->properties();
  f.album_artist = FirstProperty(props_map, "ALBUMARTIST");
  f.genre = FirstString(tags, &TagLib::Tag::genre);
  f.disc = LeadingNumber(FirstProperty(props_map, "DISCNUMBER"));
  // "1" in ID3v2's TCMP and Vorbis comments; MP4's boolean cpil reads as "1" too.
  const std::string compilation = FirstProperty(props_map, "COMPILATION");
  f.compilation = !compilation.empty() && compilation != "0" ? 1 : 0;
  const Picture picture = ChoosePicture(*ref.file());
  if (!picture.bytes.empty()) {
    f.cover_sha256 = dispotify::api::tags::Sha256Hex(picture.bytes);
    if (!f.cover_sha256.empty()) f.cover_type = picture.type;
  }
  Print(f);
  return 0;
}

// The bytes of `path` if it is an image file itself (by its magic bytes), else "".
std::string ReadImageFile(const char* path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path, "rb"), std::fclose);
  if (file == nullptr) Fail(kExitNotAudio, "cannot open the file");
  std::string bytes(12, '\0');
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), file.get()));
  if (ImageTypeOf(bytes).empty()) return "";
  char buf[1 << 16];
  while (size_t n = std::fread(buf, 1, sizeof(buf), file.get())) {
    bytes.append(buf, n);
    if (bytes.size() > kMaxPictureBytes) Fail(kExitNotAudio, "image file too large");
  }
  if (std::ferror(file.get()) != 0) Fail(kExitNotAudio, "cannot read the file");
  return bytes;
}

int RenderCover(const char* path, int size) {
  // Images first: TagLib's MPEG detection scans for a frame sync and could take a JPEG for audio.
  std::string image = ReadImageFile(path);
  if (image.empty()) {
    TagLib::FileStream stream(path, /*openReadOnly=*/true);
    if (!stream.isOpen()) Fail(kExitNotAudio, "cannot open the file");
    const Format* format = nullptr;
    const TagLib::FileRef ref = OpenAudio(stream, format);
    image = ChoosePicture(*ref.file()).bytes;
    if (image.empty())
      Fail(kExitNoPicture, std::string("no JPEG, PNG or WebP picture in the ") + format->name);
  }
  std::string error;
  const std::string jpeg = dispotify::api::tags::RenderJpeg(image, size, error);
  if (jpeg.empty()) Fail(kExitNotAudio, error);
  if (std::fwrite(jpeg.data(), 1, jpeg.size(), stdout) != jpeg.size() || std::fflush(stdout) != 0) {
    std::exit(1);
  }
  return 0;
}

// SIZE of --cover, or exits.
int ParseCoverSize(std::string_view text) {
  int size = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || size > kMaxCoverSize) Fail(kExitUsage, "bad --cover size");
    size = size * 10 + (c - '0');
  }
  if (size < kMinCoverSize || size > kMaxCoverSize) Fail(kExitUsage, "--cover size must be in [16, 2048]");
  return size;
}

}  // namespace

int main(int argc, char** argv) {
  const char* test_env = std::getenv("DISPOTIFY_TAGGER_TEST");
  const bool test_hooks = test_env != nullptr && std::string_view(test_env) == "1";
  int i = 1;
  std::vector<std::string_view> hooks;
  int cover_size = 0;  // 0: print the tags
  for (; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    std::string_view arg = argv[i];
    if (arg.empty() || arg[0] != '-') break;  // a path without "--"
    if (arg == "--cover" && cover_size == 0 && i + 1 < argc) {
      cover_size = ParseCoverSize(argv[++i]);
      continue;
    }
    if (!test_hooks || arg.substr(0, 7) != "--test-") Fail(kExitUsage, "unknown flag " + std::string(arg));
    hooks.push_back(arg);
  }
  if (i < argc && std::string_view(argv[i]) == "--") ++i;
  if (argc - i != 1) Fail(kExitUsage, "usage: dispotify-tagger [--cover SIZE] [--] <path>");
  for (std::string_view hook : hooks) RunTestHook(hook);
  return cover_size > 0 ? RenderCover(argv[i], cover_size) : ReadFile(argv[i]);
}
