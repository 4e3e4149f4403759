#pragma once
// Reads an uploaded file's audio tags (title, artist, album, track, year) and stream properties
// (duration, bitrate, sample rate, channels), and renders its cover picture, without letting the
// file near the node process.
//
// TagLib can crash or loop on crafted files and is not thread-safe, and libvips decodes images an
// attacker chose, so both run only inside dispotify-tagger (tagger_main.cc), one child process per
// file, with limits set before exec:
// address space, CPU time, no file writes, few fds, no core dumps; a wall-clock timeout kills it
// with SIGKILL. Whatever the file does to the child, the caller gets a Status.
//
// The tagger's protocol: argv = [tagger, test flags..., "--", path]; on success exit 0 and one line
// of JSON on stdout, a flat object:
//   {"format":"mp3","title":"...","artist":"...","album":"...","track":N,"year":N,
//    "duration_ms":N,"bitrate_kbps":N,"sample_rate":N,"channels":N,
//    "album_artist":"...","genre":"...","disc":N,"compilation":0|1,
//    "cover_sha256":"<64 lowercase hex>","cover_type":"image/jpeg"}
// (album_artist: ID3v2 TPE2, Vorbis ALBUMARTIST, MP4 aART; disc: the leading number of TPOS /
// DISCNUMBER / disk, "2/3" is 2; compilation: TCMP / COMPILATION / cpil. cover_sha256: the SHA-256
// of the embedded picture's bytes as stored in the file, the front cover (ID3v2 APIC type 3, FLAC
// and Vorbis/Opus picture type 3, the first MP4 covr) or else the first picture; cover_type:
// image/jpeg, image/png or image/webp from its magic bytes, never from the tag's MIME field. Both
// are "" when there is no picture, or it is of another type or over 16 MiB. The last six came
// later: a tagger that does not print them leaves them empty, 0 and false.)
// format is one of mp3, flac, ogg (Vorbis), opus, m4a, wav (detected by content, not by name);
// strings are UTF-8, a missing tag is "" and a missing number 0. Exit 3 (with a short message on
// stderr): not audio, or unreadable. Exit 2: bad arguments.
//
// Cover mode: argv = [tagger, test flags..., "--cover", SIZE, "--", path], SIZE in [16, 2048];
// path is an audio file (its picture chosen as for cover_sha256) or a JPEG, PNG or WebP image
// file. On success exit 0 and stdout is a JPEG (quality 85, no metadata) that fits into SIZE x
// SIZE, never enlarged. Exit 4: no usable picture (exactly when cover_sha256 would be "").
// Exit 3: neither audio nor an image (or an image file over 16 MiB), or the picture does not
// decode (truncated, corrupt, over 16384 px a side or 50 Mpx). Exit 2: bad arguments.
//
// Children are reaped with waitpid(pid) on every path. The process must not set SIGCHLD to SIG_IGN
// nor reap children it did not start (waitpid(-1)); ReadTags changes no signal disposition.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dispotify::api::tags {

struct AudioTags {
  std::string format;  // "mp3", "flac", "ogg", "opus", "m4a" or "wav"
  std::string title;
  std::string artist;
  std::string album;
  uint32_t track = 0;  // 0: unknown
  uint32_t year = 0;   // 0: unknown
  uint64_t duration_ms = 0;
  uint32_t bitrate_kbps = 0;
  uint32_t sample_rate = 0;
  uint32_t channels = 0;
  std::string album_artist;  // "": not tagged
  std::string genre;
  uint32_t disc = 0;  // 0: unknown
  bool compilation = false;
  std::string cover_sha256;  // "": no usable picture; else 64 lowercase hex digits
  std::string cover_type;    // "", "image/jpeg", "image/png" or "image/webp"
};

struct TagReaderOptions {
  // Empty: dispotify-tagger in the directory of the running executable (DefaultTaggerPath()).
  std::string tagger_path;
  // Wall clock, from spawn to exit; then SIGKILL and a kInvalidArgument.
  std::chrono::milliseconds timeout{5000};
  // Child limits (0: no limit). The address-space limit is skipped in sanitizer builds, whose
  // runtime reserves terabytes of shadow memory at start. Measured needs (release build, Debian 12,
  // libvips 8.14): 112 MiB to start the tagger at all (libvips and its ~100 libraries are mapped
  // in both modes); 152 MiB to render a 3000 x 3000 JPEG at 2048 (40 MB resident), and a 7000 x
  // 7000 JPEG or PNG fits too: 512 MiB leaves room, cover mode needs no limit of its own.
  uint64_t address_space_bytes = uint64_t{512} << 20;
  uint32_t cpu_seconds = 5;
  // Larger output makes the file invalid (tags are truncated by the tagger far below this).
  size_t max_output_bytes = 64 << 10;
  // The same for RenderCover's JPEG: the worst case, 2048 x 2048 of pure noise at quality 85, is
  // 2.8 MB; real artwork is far smaller.
  size_t max_cover_bytes = 4 << 20;
  // Passed to the tagger before "--": test hooks such as --test-crash, honoured only when the
  // child's environment has DISPOTIFY_TAGGER_TEST=1.
  std::vector<std::string> extra_args;
  // "NAME=value" entries added to the inherited environment of the child.
  std::vector<std::string> extra_env;
};

// Runs the tagger on `path`. Errors:
//   kInvalidArgument  not audio; or the tagger crashed, ran out of a limit, timed out or wrote
//                     garbage (a hostile or broken upload: the client's problem);
//   kUnavailable      the tagger cannot be started (missing binary, no fds or processes left).
// Thread-safe; each call runs its own child.
Result<AudioTags> ReadTags(const std::string& path, const TagReaderOptions& options = {});

// Runs the tagger in cover mode on `path` (an audio file or a JPEG, PNG or WebP image) and returns
// a JPEG that fits into size x size (size in [16, 2048]; smaller pictures keep their size), with
// the same sandbox as ReadTags. Errors:
//   kNotFound         `path` does not exist, or has no usable picture (the tags' cover_sha256
//                     is "");
//   kInvalidArgument  size out of range; neither audio nor an image; a picture that does not
//                     decode; or the tagger crashed, ran out of a CPU or memory limit or wrote
//                     something that is not a JPEG of at most max_cover_bytes (all of which the
//                     same file does again);
//   kTimeout          the tagger ran past the wall-clock timeout (perhaps only because the
//                     machine was busy);
//   kUnavailable      the tagger cannot be started.
// Thread-safe; each call runs its own child.
Result<std::string> RenderCover(const std::string& path, uint32_t size, const TagReaderOptions& options = {});

// <dirname of /proc/self/exe>/dispotify-tagger ("" if /proc/self/exe cannot be read).
std::string DefaultTaggerPath();

// Parses the tagger's JSON line (strict: a flat object of strings and non-negative integers, every
// key at most once, "format" required, unknown keys ignored, strings valid UTF-8 without NUL,
// cover_sha256 "" or 64 lowercase hex digits, cover_type "" or one of the three image types, and
// the two both empty or both set).
// Exposed for tests; the output of a child that a crafted file may control is untrusted input.
Result<AudioTags> ParseTaggerOutput(std::string_view text);

}  // namespace dispotify::api::tags
