#include "node/api/tags/tag_reader.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>
#include <thread>

#include "common/logging.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): <unistd.h> has it only with _GNU_SOURCE

namespace dispotify::api::tags {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kNotAudio = "not a recognised audio file";
constexpr std::string_view kUnsafe = "the file's tags could not be read safely";
constexpr std::string_view kTimedOut = "reading the file's tags timed out";
constexpr std::string_view kNoPicture = "the file has no cover picture";
constexpr std::string_view kNotDecodable =
    "not a recognised audio file or image, or its picture does not decode";
constexpr std::string_view kCoverUnsafe = "the file's cover could not be rendered safely";
constexpr std::string_view kCoverTimedOut = "rendering the file's cover timed out";

// The tagger's exit codes (tag_reader.h).
constexpr int kTaggerExitUsage = 2;
constexpr int kTaggerExitNotAudio = 3;
constexpr int kTaggerExitNoPicture = 4;
constexpr uint32_t kMinCoverSize = 16;
constexpr uint32_t kMaxCoverSize = 2048;

// The tagger opens its libraries, the file and (in sanitizer builds) a few /proc files.
constexpr rlim_t kChildMaxFds = 32;
// Kept from the child's stderr for the log.
constexpr size_t kMaxStderrBytes = 4096;

#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizerBuild = true;
#else
constexpr bool kThreadSanitizerBuild = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif
#else
constexpr bool kSanitizerBuild = false;
#endif

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// strerror is not thread-safe; the GNU strerror_r returns the message (possibly not in buf).
std::string ErrnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof(buf));
}

Status Unavailable(std::string_view what, int err) {
  return Status::Unavailable(std::string(what) + ": " + ErrnoText(err));
}

// Moves `fd` (close-on-exec) to a number >= 3, so that the child's dup2 onto 0..2 never finds one
// of its sources already there (only possible when the node runs with a standard stream closed).
Status LiftAboveStdio(UniqueFd& fd) {
  if (fd.get() >= 3) return Status::Ok();
  int lifted = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (lifted < 0) return Unavailable("fcntl", errno);
  fd = UniqueFd(lifted);
  return Status::Ok();
}

Status MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Unavailable("pipe", errno);
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  DISPOTIFY_RETURN_IF_ERROR(LiftAboveStdio(read_end));
  return LiftAboveStdio(write_end);
}

// Everything the child needs, prepared before fork: between fork and exec the child may only make
// async-signal-safe calls (another thread may have held the malloc lock at fork time).
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int exec_error_fd = -1;  // receives errno if exec (or a setrlimit) fails
  std::vector<std::pair<int, rlimit>> limits;
  sigset_t empty_mask;
};

void WriteErrnoAndExit(int fd, int err) {
  ssize_t ignored = ::write(fd, &err, sizeof(err));
  static_cast<void>(ignored);
  ::_exit(127);
}

// Puts `fd` at `target` without close-on-exec.
bool MoveTo(int fd, int target) {
  if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0;
  return ::dup2(fd, target) == target;
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  // Signal state survives exec for blocked and ignored signals: start the tagger with defaults
  // (SIGXCPU must kill it, SIGPIPE must not be ignored because the node ignores it).
  ::sigprocmask(SIG_SETMASK, &plan.empty_mask, nullptr);  // NOLINT(concurrency-mt-unsafe): one thread here
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGXCPU, SIGXFSZ, SIGINT, SIGTERM, SIGHUP, SIGQUIT})
    ::sigaction(sig, &dfl, nullptr);

  if (!MoveTo(plan.stdin_fd, 0) || !MoveTo(plan.stdout_fd, 1) || !MoveTo(plan.stderr_fd, 2)) {
    WriteErrnoAndExit(plan.exec_error_fd, errno);
  }
  // The exec-error pipe goes to fd 3 (still close-on-exec); every other descriptor is closed.
  int err_fd = plan.exec_error_fd;
  if (err_fd != 3) {
    if (::dup3(err_fd, 3, O_CLOEXEC) != 3) ::_exit(127);
    err_fd = 3;
  }
  if (::close_range(4, ~0U, 0) != 0) {
    rlimit nofile{};
    int max_fd = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
                         nofile.rlim_cur < 1048576
                     ? static_cast<int>(nofile.rlim_cur)
                     : 1048576;
    for (int fd = 4; fd < max_fd; ++fd) ::close(fd);
  }
  for (const auto& [resource, limit] : plan.limits) {
    if (::setrlimit(resource, &limit) != 0) WriteErrnoAndExit(err_fd, errno);
  }
  ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
  WriteErrnoAndExit(err_fd, errno);
  ::_exit(127);  // not reached
}

// Reads what is available on `fd` into `out` up to `cap` bytes (the rest is discarded). Returns
// false at end of file or on error.
bool Drain(int fd, std::string& out, size_t cap, bool& overflow) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  size_t room = cap > out.size() ? cap - out.size() : 0;
  size_t take = std::min(room, static_cast<size_t>(n));
  out.append(buf, take);
  if (take < static_cast<size_t>(n)) overflow = true;
  return true;
}

// Blocks until `pid` has exited and returns its wait status; nullopt if it was reaped by someone
// else (SIGCHLD set to SIG_IGN, or a waitpid(-1) elsewhere in the process).
std::optional<int> Reap(pid_t pid) {
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, 0);
    if (r == pid) return status;
    if (r < 0 && errno == EINTR) continue;
    return std::nullopt;
  }
}

std::string Tail(const std::string& s) {
  std::string out = s.size() > 512 ? s.substr(s.size() - 512) : s;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

// ---- the JSON line ---------------------------------------------------------------------------

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
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
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class FlatJsonParser {
 public:
  explicit FlatJsonParser(std::string_view text) : s_(text) {}

  Result<AudioTags> Parse() {
    AudioTags tags;
    uint32_t seen = 0;
    SkipSpace();
    if (!Consume('{')) return Error("expected '{'");
    SkipSpace();
    if (!Consume('}')) {
      while (true) {
        SkipSpace();
        std::string key;
        if (!ParseString(key)) return Error("bad key");
        SkipSpace();
        if (!Consume(':')) return Error("expected ':'");
        SkipSpace();
        std::string str;
        uint64_t num = 0;
        bool is_string = Peek() == '"';
        if (is_string ? !ParseString(str) : !ParseNumber(num)) return Error("bad value for " + key);
        int field = FieldIndex(key);
        if (field >= 0) {
          if ((seen & (1U << field)) != 0) return Error("duplicate key " + key);
          seen |= 1U << field;
          if (!Assign(tags, field, is_string, std::move(str), num)) return Error("bad value for " + key);
        }
        SkipSpace();
        if (Consume(',')) continue;
        if (Consume('}')) break;
        return Error("expected ',' or '}'");
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) return Error("trailing bytes");
    if ((seen & 1U) == 0 || tags.format.empty()) return Error("no format");
    if (tags.cover_sha256.empty() != tags.cover_type.empty()) return Error("cover_sha256 without cover_type");
    return tags;
  }

 private:
  // Indexes 0-3, 10-11 and 14-15 are strings, the others numbers (Assign).
  static constexpr const char* kFields[] = {"format",      "title",       "artist",       "album",
                                            "track",       "year",        "duration_ms",  "bitrate_kbps",
                                            "sample_rate", "channels",    "album_artist", "genre",
                                            "disc",        "compilation", "cover_sha256", "cover_type"};

  static int FieldIndex(std::string_view key) {
    for (int i = 0; i < static_cast<int>(std::size(kFields)); ++i) {
      if (key == kFields[i]) return i;
    }
    return -1;
  }

  // The cover's fields name a picture elsewhere (a cache key, a Content-Type): only the exact forms
  // the tagger prints get through.
  static bool IsSha256Hex(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  }
  static bool IsCoverType(std::string_view s) {
    return s == "image/jpeg" || s == "image/png" || s == "image/webp";
  }

  static bool Assign(AudioTags& tags, int field, bool is_string, std::string str, uint64_t num) {
    if (field == 14 || field == 15) {
      if (!is_string || !(str.empty() || (field == 14 ? IsSha256Hex(str) : IsCoverType(str)))) return false;
      (field == 14 ? tags.cover_sha256 : tags.cover_type) = std::move(str);
      return true;
    }
    std::string* strings[] = {&tags.format, &tags.title, &tags.artist, &tags.album};
    if (field < 4 || field == 10 || field == 11) {
      if (!is_string) return false;
      *(field == 10 ? &tags.album_artist : field == 11 ? &tags.genre : strings[field]) = std::move(str);
      return true;
    }
    if (is_string) return false;
    if (field == 6) {
      tags.duration_ms = num;
      return true;
    }
    if (num > UINT32_MAX) return false;
    auto v = static_cast<uint32_t>(num);
    switch (field) {
      case 4: tags.track = v; break;
      case 5: tags.year = v; break;
      case 7: tags.bitrate_kbps = v; break;
      case 8: tags.sample_rate = v; break;
      case 9: tags.channels = v; break;
      case 12: tags.disc = v; break;
      default:
        if (v > 1) return false;  // a flag
        tags.compilation = v == 1;
        break;
    }
    return true;
  }

  Status Error(const std::string& what) const {
    return Status::InvalidArgument("tagger output: " + what + " at byte " + std::to_string(pos_));
  }

  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool ParseNumber(uint64_t& out) {
    size_t start = pos_;
    out = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      auto digit = static_cast<uint64_t>(s_[pos_] - '0');
      if (out > (UINT64_MAX - digit) / 10) return false;
      out = out * 10 + digit;
      ++pos_;
    }
    size_t len = pos_ - start;
    return len > 0 && !(len > 1 && s_[start] == '0');
  }

  bool ParseHex4(uint32_t& out) {
    if (pos_ + 4 > s_.size()) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  bool ParseString(std::string& out) {
    if (!Consume('"')) return false;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return IsValidUtf8(out);
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(cp) || cp == 0) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (!Consume('\\') || !Consume('u') || !ParseHex4(low) || low < 0xDC00 || low > 0xDFFF)
              return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

Result<AudioTags> ParseTaggerOutput(std::string_view text) {
  return FlatJsonParser(text).Parse();
}

std::string DefaultTaggerPath() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string exe(buf, static_cast<size_t>(n));
  size_t slash = exe.rfind('/');
  if (slash == std::string::npos) return "";
  return exe.substr(0, slash) + "/dispotify-tagger";
}

namespace {

// What the client is told about a run that went wrong, per mode.
struct RunTexts {
  std::string_view not_regular;  // the path is a directory, a device...
  std::string_view unsafe;       // crash, limit, garbage
  std::string_view timed_out;
};

constexpr RunTexts kTagTexts{kNotAudio, kUnsafe, kTimedOut};
constexpr RunTexts kCoverTexts{kNotDecodable, kCoverUnsafe, kCoverTimedOut};

// Runs the tagger with `mode_args` before "--" and `path`, in the sandbox of `options`, keeping at
// most `max_output` bytes of its stdout. Returns the exit code of a tagger that exited on its own
// (any code but 2) with its stdout in `out`; a crash, timeout, overflow or exit 2 is already
// mapped to a Status here, so that every mode treats them alike.
Result<int> RunTagger(const std::string& path, const std::vector<std::string>& mode_args, size_t max_output,
                      const TagReaderOptions& options, const RunTexts& texts, std::string& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound("no such file: " + path);
    return Status::FromErrno(errno, "stat " + path);
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(std::string(texts.not_regular));

  const std::string tagger = options.tagger_path.empty() ? DefaultTaggerPath() : options.tagger_path;
  if (tagger.empty()) return Status::Unavailable("cannot locate dispotify-tagger");

  std::vector<std::string> args;
  args.push_back(tagger);
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  args.insert(args.end(), mode_args.begin(), mode_args.end());
  args.emplace_back("--");
  args.push_back(path);
  std::vector<std::string> extra_env = options.extra_env;

  ChildPlan plan;
  for (std::string& a : args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  // getenv returns the first match: the added entries win over inherited ones.
  for (std::string& e : extra_env) plan.envp.push_back(e.data());
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) plan.envp.push_back(*e);
  plan.envp.push_back(nullptr);
  sigemptyset(&plan.empty_mask);

  plan.limits.push_back({RLIMIT_CORE, rlimit{0, 0}});
  // The ThreadSanitizer runtime of an instrumented tagger writes a file at start; release builds
  // forbid the child to write any.
  if (!kThreadSanitizerBuild) plan.limits.push_back({RLIMIT_FSIZE, rlimit{0, 0}});
  plan.limits.push_back({RLIMIT_NOFILE, rlimit{kChildMaxFds, kChildMaxFds}});
  if (options.cpu_seconds > 0) {
    // SIGXCPU at the soft limit, SIGKILL a second later.
    plan.limits.push_back({RLIMIT_CPU, rlimit{options.cpu_seconds, rlim_t{options.cpu_seconds} + 1}});
  }
  if (options.address_space_bytes > 0 && !kSanitizerBuild) {
    plan.limits.push_back({RLIMIT_AS, rlimit{options.address_space_bytes, options.address_space_bytes}});
  }

  UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!dev_null.valid()) return Unavailable("open /dev/null", errno);
  DISPOTIFY_RETURN_IF_ERROR(LiftAboveStdio(dev_null));
  UniqueFd out_r, out_w, err_r, err_w, exec_r, exec_w;
  DISPOTIFY_RETURN_IF_ERROR(MakePipe(out_r, out_w));
  DISPOTIFY_RETURN_IF_ERROR(MakePipe(err_r, err_w));
  DISPOTIFY_RETURN_IF_ERROR(MakePipe(exec_r, exec_w));
  plan.stdin_fd = dev_null.get();
  plan.stdout_fd = out_w.get();
  plan.stderr_fd = err_w.get();
  plan.exec_error_fd = exec_w.get();

  const Clock::time_point deadline = Clock::now() + options.timeout;
  pid_t pid = ::fork();
  if (pid < 0) return Unavailable("fork", errno);
  if (pid == 0) RunChild(plan);

  dev_null.Reset();
  out_w.Reset();
  err_w.Reset();
  exec_w.Reset();

  std::string err, exec_errno;
  bool out_overflow = false, err_overflow = false, exec_overflow = false;
  bool timed_out = false;
  while (out_r.valid() || err_r.valid() || exec_r.valid()) {
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    UniqueFd* owners[3];
    std::string* sinks[3];
    size_t caps[3];
    bool* overflows[3];
    nfds_t n = 0;
    auto add = [&](UniqueFd& fd, std::string& sink, size_t cap, bool& overflow) {
      if (!fd.valid()) return;
      fds[n] = pollfd{fd.get(), POLLIN, 0};
      owners[n] = &fd;
      sinks[n] = &sink;
      caps[n] = cap;
      overflows[n] = &overflow;
      ++n;
    };
    add(out_r, out, max_output, out_overflow);
    add(err_r, err, kMaxStderrBytes, err_overflow);
    add(exec_r, exec_errno, sizeof(int), exec_overflow);
    int ready = ::poll(fds, n, static_cast<int>(std::min<int64_t>(remaining.count(), 1000)));
    if (ready < 0 && errno != EINTR) {
      DLOG_ERROR << "poll on the tagger's pipes: " << ErrnoText(errno);
      timed_out = true;  // cannot watch the child: treat it as hung
      break;
    }
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (!Drain(fds[i].fd, *sinks[i], caps[i], *overflows[i])) owners[i]->Reset();
    }
    if (out_overflow) break;
  }

  std::optional<int> status;
  if (!timed_out && !out_overflow) {
    // The pipes are closed, so the child has exited or is about to; a child that closed them and
    // kept running still meets the deadline.
    auto sleep = std::chrono::microseconds(100);
    while (true) {
      int ws = 0;
      pid_t r = ::waitpid(pid, &ws, WNOHANG);
      if (r == pid) {
        status = ws;
        break;
      }
      if (r < 0 && errno != EINTR) break;  // reaped elsewhere: status stays unknown
      if (Clock::now() >= deadline) {
        timed_out = true;
        break;
      }
      std::this_thread::sleep_for(sleep);
      sleep = std::min(sleep * 2, std::chrono::microseconds(10000));
    }
  }
  if (timed_out || out_overflow) {
    ::kill(pid, SIGKILL);
    status = Reap(pid);
  }

  if (exec_errno.size() == sizeof(int)) {
    int e = 0;
    std::memcpy(&e, exec_errno.data(), sizeof(e));
    return Unavailable("cannot run " + tagger, e);
  }
  if (timed_out) {
    // The wall clock, unlike the CPU and memory limits, also runs out on a busy machine: the
    // callers decide whether that is the file's fault.
    DLOG_WARN << "tagger timed out after " << options.timeout.count() << " ms on " << path;
    return Status::Timeout(std::string(texts.timed_out));
  }
  if (out_overflow) {
    DLOG_WARN << "tagger wrote more than " << max_output << " bytes on " << path;
    return Status::InvalidArgument(std::string(texts.unsafe));
  }
  if (!status.has_value()) return Status::Unavailable("lost the tagger's exit status (SIGCHLD ignored?)");
  if (WIFSIGNALED(*status)) {
    DLOG_WARN << "tagger killed by signal " << WTERMSIG(*status) << " on " << path << ": " << Tail(err);
    return Status::InvalidArgument(std::string(texts.unsafe));
  }
  int code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  if (code == kTaggerExitUsage) return Status::Unavailable("the tagger rejected its arguments: " + Tail(err));
  if (code != 0 && code != kTaggerExitNotAudio && code != kTaggerExitNoPicture) {
    DLOG_WARN << "tagger exited with " << code << " on " << path << ": " << Tail(err);
    return Status::InvalidArgument(std::string(texts.unsafe));
  }
  return code;
}

}  // namespace

Result<AudioTags> ReadTags(const std::string& path, const TagReaderOptions& options) {
  std::string out;
  Result<int> code = RunTagger(path, {}, options.max_output_bytes, options, kTagTexts, out);
  // An upload whose tags take too long is refused like a hostile file.
  if (!code.ok() && code.status().code() == StatusCode::kTimeout) {
    return Status::InvalidArgument(code.status().message());
  }
  if (!code.ok()) return code.status();
  if (*code == kTaggerExitNotAudio) return Status::InvalidArgument(std::string(kNotAudio));
  if (*code != 0) {
    DLOG_WARN << "tagger exited with " << *code << " on " << path;
    return Status::InvalidArgument(std::string(kUnsafe));
  }
  Result<AudioTags> tags = ParseTaggerOutput(out);
  if (!tags.ok()) {
    DLOG_WARN << "tagger output rejected for " << path << ": " << tags.status().message();
    return Status::InvalidArgument(std::string(kUnsafe));
  }
  return tags;
}

Result<std::string> RenderCover(const std::string& path, uint32_t size, const TagReaderOptions& options) {
  if (size < kMinCoverSize || size > kMaxCoverSize) {
    return Status::InvalidArgument("cover size " + std::to_string(size) + " is not in [16, 2048]");
  }
  std::string out;
  Result<int> code =
      RunTagger(path, {"--cover", std::to_string(size)}, options.max_cover_bytes, options, kCoverTexts, out);
  if (!code.ok()) return code.status();
  if (*code == kTaggerExitNoPicture) return Status::NotFound(std::string(kNoPicture));
  if (*code == kTaggerExitNotAudio) return Status::InvalidArgument(std::string(kNotDecodable));
  // A JPEG starts with SOI and the first marker's FF; anything else came from a confused child.
  if (out.size() < 3 || std::string_view(out).substr(0, 3) != "\xFF\xD8\xFF") {
    DLOG_WARN << "tagger's cover of " << path << " is not a JPEG (" << out.size() << " bytes)";
    return Status::InvalidArgument(std::string(kCoverUnsafe));
  }
  return out;
}

}  // namespace dispotify::api::tags
