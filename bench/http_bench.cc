// HTTP load generator for the REST API benchmarks (driven by bench/run-api-bench.sh).
//
// Raw sockets, HTTP/1.1 keep-alive (one connection per thread, reopened after an error or a
// `Connection: close`), N threads. Every mode prints one line, `<label>: key=value ...`:
// throughput (MBps = 10^6 bytes/s of bodies moved, req_per_s) and latency percentiles in ms
// (request written -> last body byte read).
//
// Modes:
//   get       GET --path on --target for --duration s (or --requests in all). With --range-bytes N,
//             each request asks for `Range: bytes=a-(a+N-1)` at a random offset (the object size
//             is learnt first with a HEAD) and expects 206. Bodies of known length are discarded
//             in the kernel (recv MSG_TRUNC) so the client costs little CPU; --copy-body reads
//             them into user space instead.
//   upload    POST /music/upload?filename=<prefix>-<t>-<i>.mp3 with --file streamed from disk
//             (sendfile, Content-Length); --requests in all over --threads. Each request has
//             its own file name, so each stores a new song.
//   populate  Uploads tiny generated MP3s (--file, a few KB) with generated title, artist and
//             album (query parameters, so the catalog has varied text) until --songs are stored
//             or --duration s have passed; prints the number stored.
//   search    GET /music/search?q=... for --duration s; queries drawn from the same generator
//             as populate over its first --songs songs (whole title words, 3-4 letter prefixes,
//             artist names, two-word titles, a word with one typo).
//   song      GET /music/songs/<prefix>-<n>.mp3 for random n < --songs (the ids populate made)
//             for --duration s; 404s are counted (no_match), not errors.
//   With --consistency stale, search and song add ?consistency=stale (the node answers from its
//   own catalog; otherwise every read confirms the latest state with the leader first).
//   failover  Uploads --file in a loop from --threads threads; after --kill-after s sends
//             SIGKILL to --kill-pid and measures the time from the kill until an upload started
//             after the kill succeeds (gap_ms), and until any upload completes (first_ok_ms).
//   mkmp3     Writes an MP3 of about --size bytes to --out: an ID3v2.4 tag (title --title) and
//             silent MPEG-1 Layer III frames of 417 bytes (FF FB 90 00 ...), as
//             tests/support/audio_files.cc MakeMp3 does.
//
// Usage: dispotify-http-bench MODE [--target HOST:PORT] [--path P] [--threads N]
//          [--duration S] [--requests N] [--range-bytes N] [--file PATH] [--prefix P]
//          [--songs N] [--kill-pid PID] [--kill-after S] [--timeout S] [--label L]
//          [--seed N] [--copy-body] [--out PATH] [--size BYTES] [--title T] [--consistency stale]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string mode;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  int threads = 1;
  double duration = 0;  // 0: --requests decides
  uint64_t requests = 0;
  uint64_t range_bytes = 0;
  std::string file;
  std::string prefix = "bench";
  uint64_t songs = 1000;
  std::string queries;      // search: a file of queries, one per line (else the generator's)
  std::string consistency;  // search, song: "stale" adds ?consistency=stale
  int kill_pid = 0;
  double kill_after = 2;
  double timeout = 30;
  std::string label;
  uint64_t seed = 42;
  bool copy_body = false;
  std::string out;
  uint64_t size = 0;
  std::string title = "Bench Song";
};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "dispotify-http-bench: %s\n", msg.c_str());
  std::exit(1);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// --- HTTP client ---------------------------------------------------------------------------------------

struct Response {
  int status = 0;
  uint64_t body_bytes = 0;
  std::string body;  // only when asked for
  bool close = false;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Connection {
 public:
  Connection(std::string host, int port, double timeout_s, bool copy_body)
      : host_(std::move(host)), port_(port), timeout_s_(timeout_s), copy_body_(copy_body), buf_(256 * 1024) {}
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    begin_ = end_ = 0;
  }

  // Sends `head` (request line + headers + blank line), then `body` or `body_fd` (body_len bytes
  // from offset 0, by sendfile), and reads the response. keep_body: the body is returned in
  // Response::body. Returns nullopt (and an error text) on a transport error.
  std::optional<Response> Roundtrip(const std::string& head, std::string_view body, int body_fd,
                                    uint64_t body_len, bool keep_body, bool head_request,
                                    std::string* error) {
    const bool reused = fd_ >= 0;
    if (!reused && !Connect(error)) return std::nullopt;
    const uint64_t read_before = read_total_;
    bool sent = SendAll(head.data(), head.size(), error);
    if (sent && !body.empty()) sent = SendAll(body.data(), body.size(), error);
    if (sent && body_fd >= 0) {
      off_t off = 0;
      while (sent && static_cast<uint64_t>(off) < body_len) {
        const size_t chunk =
            static_cast<size_t>(std::min<uint64_t>(body_len - static_cast<uint64_t>(off), 1 << 30));
        ssize_t n = ::sendfile(fd_, body_fd, &off, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          *error = std::string("sendfile: ") + std::strerror(errno);
          sent = false;
        }
      }
    }
    // A server may answer (and close) before taking the whole body: read what it said.
    auto resp = ReadResponse(keep_body, head_request, error);
    if (!resp) {
      Close();
      // A kept-alive connection the server had closed meanwhile: once more on a new one.
      if (reused && read_total_ == read_before)
        return Roundtrip(head, body, body_fd, body_len, keep_body, head_request, error);
      return std::nullopt;
    }
    if (resp->close || !sent) Close();
    return resp;
  }

 private:
  bool Connect(std::string* error) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      *error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout_s_);
    tv.tv_usec = static_cast<suseconds_t>((timeout_s_ - static_cast<double>(tv.tv_sec)) * 1e6);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    if (::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr) != 1) Die("not an IPv4 address: " + host_);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      *error = std::string("connect: ") + std::strerror(errno);
      Close();
      return false;
    }
    return true;
  }

  bool SendAll(const char* p, size_t n, std::string* error) {
    while (n > 0) {
      ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        *error = std::string("send: ") + std::strerror(errno);
        return false;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  // Refills the buffer (after moving what is left to the front). False on EOF or error.
  bool Fill(std::string* error) {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
    for (;;) {
      ssize_t n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *error = std::string("recv: ") + std::strerror(errno);
        return false;
      }
      if (n == 0) {
        *error = "connection closed by the server";
        return false;
      }
      end_ += static_cast<size_t>(n);
      read_total_ += static_cast<uint64_t>(n);
      return true;
    }
  }

  bool ReadLine(std::string* line, std::string* error) {
    for (;;) {
      std::string_view avail(buf_.data() + begin_, end_ - begin_);
      auto pos = avail.find("\r\n");
      if (pos != std::string_view::npos) {
        line->assign(avail.substr(0, pos));
        begin_ += pos + 2;
        return true;
      }
      if (!Fill(error)) return false;
    }
  }

  // Reads (and discards or keeps) exactly n body bytes.
  bool ReadBody(uint64_t n, bool keep, Response* r, std::string* error) {
    while (n > 0) {
      if (end_ > begin_) {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(n, end_ - begin_));
        if (keep) r->body.append(buf_.data() + begin_, take);
        begin_ += take;
        n -= take;
        r->body_bytes += take;
        continue;
      }
      begin_ = end_ = 0;
      if (!keep && !copy_body_) {
        ssize_t got = ::recv(fd_, nullptr, static_cast<size_t>(std::min<uint64_t>(n, 1 << 30)), MSG_TRUNC);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
          *error = got == 0 ? "connection closed mid-body" : std::string("recv: ") + std::strerror(errno);
          return false;
        }
        n -= static_cast<uint64_t>(got);
        r->body_bytes += static_cast<uint64_t>(got);
        read_total_ += static_cast<uint64_t>(got);
        continue;
      }
      if (!Fill(error)) return false;
    }
    return true;
  }

  std::optional<Response> ReadResponse(bool keep_body, bool head_request, std::string* error) {
    Response r;
    std::string line;
    if (!ReadLine(&line, error)) return std::nullopt;
    if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) {
      *error = "bad status line: " + line.substr(0, 80);
      return std::nullopt;
    }
    r.status = std::atoi(line.c_str() + 9);
    std::optional<uint64_t> length;
    bool chunked = false;
    if (line.compare(0, 8, "HTTP/1.0") == 0) r.close = true;
    for (;;) {
      if (!ReadLine(&line, error)) return std::nullopt;
      if (line.empty()) break;
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string name = Lower(std::string_view(line).substr(0, colon));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      if (name == "content-length") {
        length = std::strtoull(value.c_str(), nullptr, 10);
      } else if (name == "transfer-encoding") {
        chunked = Lower(value).find("chunked") != std::string::npos;
      } else if (name == "connection") {
        if (Lower(value).find("close") != std::string::npos) r.close = true;
      }
    }
    if (r.status == 100) return ReadResponse(keep_body, head_request, error);
    if (head_request || r.status == 204 || r.status == 304) {
      if (keep_body && length) r.body = std::to_string(*length);  // HEAD: the size, for the caller
      return r;
    }
    if (chunked) {
      for (;;) {
        if (!ReadLine(&line, error)) return std::nullopt;
        const uint64_t n = std::strtoull(line.c_str(), nullptr, 16);
        if (n == 0) {
          do {  // trailers, then the blank line
            if (!ReadLine(&line, error)) return std::nullopt;
          } while (!line.empty());
          break;
        }
        // Chunk data goes through the buffer (its framing follows right after).
        const bool saved = copy_body_;
        copy_body_ = true;
        const bool ok = ReadBody(n, keep_body, &r, error);
        copy_body_ = saved;
        if (!ok || !ReadLine(&line, error)) return std::nullopt;
      }
    } else if (length) {
      if (!ReadBody(*length, keep_body, &r, error)) return std::nullopt;
    } else {
      // Neither: the body runs to the end of the connection.
      r.close = true;
      for (;;) {
        if (end_ > begin_) {
          if (keep_body) r.body.append(buf_.data() + begin_, end_ - begin_);
          r.body_bytes += end_ - begin_;
          begin_ = end_ = 0;
        }
        std::string ignored;
        if (!Fill(&ignored)) break;
      }
    }
    return r;
  }

  std::string host_;
  int port_;
  double timeout_s_;
  bool copy_body_;
  int fd_ = -1;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;
  uint64_t read_total_ = 0;  // bytes received on any connection (to tell "nothing came back")
};

// --- Results ---------------------------------------------------------------------------------------------

struct Sample {
  double ms;
  uint64_t bytes;
};

struct Totals {
  std::mutex mu;
  std::vector<double> latencies_ms;
  uint64_t bytes = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::string first_error;

  void Add(const std::vector<Sample>& samples, uint64_t errs, const std::string& err) {
    std::lock_guard lock(mu);
    for (const Sample& s : samples) {
      latencies_ms.push_back(s.ms);
      bytes += s.bytes;
    }
    ok += samples.size();
    errors += errs;
    if (first_error.empty()) first_error = err;
  }
};

double Percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i =
      std::min(sorted.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[i];
}

void PrintTotals(const Config& c, Totals& t, double seconds, const std::string& extra) {
  std::sort(t.latencies_ms.begin(), t.latencies_ms.end());
  const double mbps = seconds > 0 ? static_cast<double>(t.bytes) / 1e6 / seconds : 0;
  const double rps = seconds > 0 ? static_cast<double>(t.ok) / seconds : 0;
  std::printf(
      "%s: threads=%d requests=%llu errors=%llu seconds=%.2f MBps=%.1f req_per_s=%.1f p50_ms=%.3f "
      "p90_ms=%.3f "
      "p99_ms=%.3f max_ms=%.3f%s\n",
      c.label.c_str(), c.threads, static_cast<unsigned long long>(t.ok),
      static_cast<unsigned long long>(t.errors), seconds, mbps, rps, Percentile(t.latencies_ms, 50),
      Percentile(t.latencies_ms, 90), Percentile(t.latencies_ms, 99),
      t.latencies_ms.empty() ? 0.0 : t.latencies_ms.back(), extra.c_str());
  if (t.errors > 0) std::fprintf(stderr, "%s: first error: %s\n", c.label.c_str(), t.first_error.c_str());
  std::fflush(stdout);
}

// Runs body(thread index, connection, request number) on every thread until the deadline or
// until `requests` have been issued in all; body returns the sample, or nullopt and an error.
template <typename Body>
double RunLoad(const Config& c, Totals* totals, Body body) {
  std::atomic<uint64_t> issued{0};
  const auto start = Clock::now();
  const auto deadline =
      c.duration > 0
          ? start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.duration))
          : Clock::time_point::max();
  std::vector<std::thread> threads;
  for (int t = 0; t < c.threads; ++t) {
    threads.emplace_back([&, t] {
      Connection conn(c.host, c.port, c.timeout, c.copy_body);
      std::vector<Sample> samples;
      uint64_t errors = 0;
      std::string first_error;
      for (;;) {
        if (Clock::now() >= deadline) break;
        const uint64_t n = issued.fetch_add(1);
        if (c.requests > 0 && n >= c.requests) break;
        std::string error;
        const auto t0 = Clock::now();
        std::optional<uint64_t> bytes = body(t, conn, n, &error);
        const auto t1 = Clock::now();
        if (bytes) {
          samples.push_back({Seconds(t1 - t0) * 1e3, *bytes});
        } else {
          ++errors;
          if (first_error.empty()) first_error = error;
          if (errors > 1000 && samples.empty()) break;  // the target is down: do not spin
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
      totals->Add(samples, errors, first_error);
    });
  }
  for (auto& th : threads) th.join();
  return Seconds(Clock::now() - start);
}

std::string HostHeader(const Config& c) {
  return c.host + ":" + std::to_string(c.port);
}

// --- get ---------------------------------------------------------------------------------------------------

int RunGet(Config c) {
  uint64_t object_size = 0;
  if (c.range_bytes > 0) {
    Connection conn(c.host, c.port, c.timeout, false);
    std::string error;
    auto r = conn.Roundtrip("HEAD " + c.path + " HTTP/1.1\r\nHost: " + HostHeader(c) + "\r\n\r\n", {}, -1, 0,
                            true, true, &error);
    if (!r || r->status != 200 || r->body.empty()) Die("HEAD " + c.path + " failed: " + error);
    object_size = std::strtoull(r->body.c_str(), nullptr, 10);
    if (object_size < c.range_bytes) Die("the object is smaller than --range-bytes");
  }
  Totals totals;
  const std::string fixed = "GET " + c.path + " HTTP/1.1\r\nHost: " + HostHeader(c) + "\r\n";
  std::vector<std::mt19937_64> rngs;
  for (int t = 0; t < c.threads; ++t) rngs.emplace_back(c.seed + static_cast<uint64_t>(t));
  const double secs = RunLoad(c, &totals, [&](int t, Connection& conn, uint64_t, std::string* error) {
    std::string head = fixed;
    int want = 200;
    if (c.range_bytes > 0) {
      const uint64_t a = rngs[static_cast<size_t>(t)]() % (object_size - c.range_bytes + 1);
      head += "Range: bytes=" + std::to_string(a) + "-" + std::to_string(a + c.range_bytes - 1) + "\r\n";
      want = 206;
    }
    head += "\r\n";
    auto r = conn.Roundtrip(head, {}, -1, 0, false, false, error);
    if (!r) return std::optional<uint64_t>();
    if (r->status != want) {
      *error = "status " + std::to_string(r->status);
      return std::optional<uint64_t>();
    }
    return std::optional<uint64_t>(r->body_bytes);
  });
  PrintTotals(c, totals, secs, c.range_bytes > 0 ? " range_bytes=" + std::to_string(c.range_bytes) : "");
  return totals.ok > 0 ? 0 : 1;
}

// --- upload ------------------------------------------------------------------------------------------------

std::string UrlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(hex[ch >> 4]);
      out.push_back(hex[ch & 15]);
    }
  }
  return out;
}

struct OpenFile {
  int fd = -1;
  uint64_t size = 0;
};

OpenFile OpenForUpload(const std::string& path) {
  OpenFile f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) Die("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) Die("cannot stat " + path);
  f.size = static_cast<uint64_t>(st.st_size);
  return f;
}

// One upload of the file (each thread opens it itself: sendfile moves the offset it is given only).
std::optional<uint64_t> UploadOnce(const Config& c, Connection& conn, int fd, uint64_t size,
                                   const std::string& query, std::string* error, int* status_out = nullptr) {
  const std::string head = "POST /music/upload?" + query + " HTTP/1.1\r\nHost: " + HostHeader(c) +
                           "\r\nContent-Type: audio/mpeg\r\nContent-Length: " + std::to_string(size) +
                           "\r\n\r\n";
  auto r = conn.Roundtrip(head, {}, fd, size, true, false, error);
  if (!r) return std::nullopt;
  if (status_out) *status_out = r->status;
  if (r->status != 201 && r->status != 200) {
    *error = "status " + std::to_string(r->status) + ": " + r->body.substr(0, 200);
    return std::nullopt;
  }
  return size;
}

int RunUpload(Config c) {
  if (c.file.empty()) Die("upload needs --file");
  const OpenFile probe = OpenForUpload(c.file);
  ::close(probe.fd);
  std::vector<OpenFile> files;
  for (int t = 0; t < c.threads; ++t) files.push_back(OpenForUpload(c.file));
  Totals totals;
  const std::string run =
      std::to_string(static_cast<long long>(::getpid())) + "-" +
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  const double secs = RunLoad(c, &totals, [&](int t, Connection& conn, uint64_t n, std::string* error) {
    const std::string name = c.prefix + "-" + run + "-" + std::to_string(n) + ".mp3";
    const OpenFile& f = files[static_cast<size_t>(t)];
    return UploadOnce(c, conn, f.fd, f.size, "filename=" + UrlEncode(name), error);
  });
  for (const OpenFile& f : files) ::close(f.fd);
  PrintTotals(c, totals, secs, " file_bytes=" + std::to_string(probe.size));
  return totals.ok > 0 ? 0 : 1;
}

// --- catalog generator (populate and search) ---------------------------------------------------------------

const char* const kWords[] = {
    "love",    "night",   "heart",  "baby",     "dance",  "fire",     "time",  "dream",   "rain",    "summer",
    "blue",    "light",   "road",   "river",    "home",   "world",    "soul",  "star",    "moon",    "sun",
    "girl",    "boy",     "city",   "gold",     "wild",   "money",    "party", "story",   "ghost",   "angel",
    "shadow",  "storm",   "ocean",  "paradise", "memory", "midnight", "sugar", "thunder", "highway", "winter",
    "echo",    "crystal", "velvet", "electric", "broken", "forever",  "rebel", "silver",  "neon",    "golden",
    "canción", "corazón", "noche",  "amor",     "café",   "été",      "rêve",  "mädchen", "straße",  "søren",
    "lune",    "fuego",   "cielo",  "vida",     "mundo",  "tiempo",   "luz",   "sombra",  "viento",  "mar",
};
constexpr size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);
const char* const kSyllables[] = {"ka",  "ro",  "mi", "ten", "sa", "lo",  "vex", "dra", "no", "qui",
                                  "bel", "tor", "an", "zu",  "fi", "mar", "el",  "os",  "ri", "gan"};
constexpr size_t kSyllableCount = sizeof(kSyllables) / sizeof(kSyllables[0]);

// A made-up word (2-4 syllables): the long tail of rare tokens a real catalog has.
std::string MadeUpWord(std::mt19937_64& rng) {
  std::string w;
  const int n = 2 + static_cast<int>(rng() % 3);
  for (int i = 0; i < n; ++i) w += kSyllables[rng() % kSyllableCount];
  return w;
}

struct GenSong {
  std::string title, artist, album;
};

// Song i, the same for every run (its own seed).
GenSong Generate(uint64_t i) {
  std::mt19937_64 rng(i * 0x9E3779B97F4A7C15ull + 12345);
  GenSong s;
  const int words = 1 + static_cast<int>(rng() % 3);
  for (int w = 0; w < words; ++w) {
    if (!s.title.empty()) s.title += ' ';
    s.title += (rng() % 4 == 0) ? MadeUpWord(rng) : kWords[rng() % kWordCount];
  }
  // Artists: a few thousand, long-tailed (lower numbers are more common).
  std::mt19937_64 arng(static_cast<uint64_t>(std::sqrt(static_cast<double>(rng() % 10000000))) + 777);
  s.artist = MadeUpWord(arng);
  s.artist[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s.artist[0])));
  if (arng() % 2 == 0) s.artist += " " + std::string(kWords[arng() % kWordCount]);
  s.album = std::string(kWords[rng() % kWordCount]) + " " + MadeUpWord(rng);
  return s;
}

std::string Word(const std::string& text, std::mt19937_64& rng) {
  std::vector<std::string> words;
  size_t start = 0;
  for (;;) {
    auto sp = text.find(' ', start);
    words.push_back(text.substr(start, sp - start));
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  return words[rng() % words.size()];
}

std::string Query(uint64_t songs, std::mt19937_64& rng) {
  const GenSong s = Generate(rng() % std::max<uint64_t>(songs, 1));
  const int kind = static_cast<int>(rng() % 10);
  if (kind < 4) return Word(s.title, rng);  // a whole title word
  if (kind < 7) {                           // a prefix of 3-4 bytes (ASCII words give letters)
    std::string w = Word(s.title, rng);
    size_t n = std::min<size_t>(w.size(), 3 + rng() % 2);
    // Whole UTF-8 characters only (a cut one is invalid UTF-8: 400).
    while (n > 1 && n < w.size() && (static_cast<unsigned char>(w[n]) & 0xC0) == 0x80) --n;
    return w.substr(0, n);
  }
  if (kind < 8) return s.artist;
  if (kind < 9) return s.title;
  std::string w = Word(s.title, rng);  // one typo: swap two neighbours
  if (w.size() >= 5) {
    const size_t p = 1 + rng() % (w.size() - 3);
    if (static_cast<unsigned char>(w[p]) < 0x80 && static_cast<unsigned char>(w[p + 1]) < 0x80)
      std::swap(w[p], w[p + 1]);
  }
  return w;
}

int RunPopulate(Config c) {
  if (c.file.empty()) Die("populate needs --file (a tiny MP3)");
  std::vector<OpenFile> files;
  for (int t = 0; t < c.threads; ++t) files.push_back(OpenForUpload(c.file));
  c.requests = c.songs;
  Totals totals;
  const double secs = RunLoad(c, &totals, [&](int t, Connection& conn, uint64_t n, std::string* error) {
    const GenSong s = Generate(n);
    const std::string q = "filename=" + UrlEncode(c.prefix + "-" + std::to_string(n) + ".mp3") +
                          "&title=" + UrlEncode(s.title) + "&artist=" + UrlEncode(s.artist) +
                          "&album=" + UrlEncode(s.album);
    const OpenFile& f = files[static_cast<size_t>(t)];
    return UploadOnce(c, conn, f.fd, f.size, q, error);
  });
  for (const OpenFile& f : files) ::close(f.fd);
  PrintTotals(c, totals, secs, " songs=" + std::to_string(totals.ok));
  return totals.ok > 0 ? 0 : 1;
}

// "&consistency=stale" (or with '?') when asked for; empty for the default linearizable reads.
std::string ConsistencyParam(const Config& c, char sep) {
  return c.consistency == "stale" ? std::string(1, sep) + "consistency=stale" : std::string();
}

int RunSearch(Config c) {
  Totals totals;
  std::vector<std::mt19937_64> rngs;
  for (int t = 0; t < c.threads; ++t) rngs.emplace_back(c.seed * 1000 + static_cast<uint64_t>(t));
  std::atomic<uint64_t> empty{0};
  std::vector<std::string> queries;
  if (!c.queries.empty()) {
    std::ifstream in(c.queries);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) queries.push_back(line);
    }
    if (queries.empty()) Die("no queries in " + c.queries);
  }
  const double secs = RunLoad(c, &totals, [&](int t, Connection& conn, uint64_t, std::string* error) {
    auto& rng = rngs[static_cast<size_t>(t)];
    const std::string q = queries.empty() ? Query(c.songs, rng) : queries[rng() % queries.size()];
    const std::string head = "GET /music/search?q=" + UrlEncode(q) + ConsistencyParam(c, '&') +
                             " HTTP/1.1\r\nHost: " + HostHeader(c) + "\r\n\r\n";
    auto r = conn.Roundtrip(head, {}, -1, 0, true, false, error);
    if (!r) return std::optional<uint64_t>();
    if (r->status != 200) {
      *error = "status " + std::to_string(r->status) + " for q=" + q;
      return std::optional<uint64_t>();
    }
    if (r->body.find("\"total\":0") != std::string::npos) empty.fetch_add(1);
    return std::optional<uint64_t>(r->body_bytes);
  });
  PrintTotals(c, totals, secs,
              " songs=" + std::to_string(c.songs) + " no_match=" + std::to_string(empty.load()));
  return totals.ok > 0 ? 0 : 1;
}

int RunSong(Config c) {
  Totals totals;
  std::vector<std::mt19937_64> rngs;
  for (int t = 0; t < c.threads; ++t) rngs.emplace_back(c.seed * 1000 + static_cast<uint64_t>(t));
  std::atomic<uint64_t> missing{0};
  const double secs = RunLoad(c, &totals, [&](int t, Connection& conn, uint64_t, std::string* error) {
    auto& rng = rngs[static_cast<size_t>(t)];
    const std::string id = c.prefix + "-" + std::to_string(rng() % std::max<uint64_t>(c.songs, 1)) + ".mp3";
    const std::string head = "GET /music/songs/" + id + ConsistencyParam(c, '?') +
                             " HTTP/1.1\r\nHost: " + HostHeader(c) + "\r\n\r\n";
    auto r = conn.Roundtrip(head, {}, -1, 0, true, false, error);
    if (!r) return std::optional<uint64_t>();
    if (r->status == 404) {
      missing.fetch_add(1);
    } else if (r->status != 200) {
      *error = "status " + std::to_string(r->status) + " for " + id;
      return std::optional<uint64_t>();
    }
    return std::optional<uint64_t>(r->body_bytes);
  });
  PrintTotals(c, totals, secs,
              " songs=" + std::to_string(c.songs) + " no_match=" + std::to_string(missing.load()));
  return totals.ok > 0 ? 0 : 1;
}

// --- failover ----------------------------------------------------------------------------------------------

int RunFailover(Config c) {
  if (c.file.empty() || c.kill_pid <= 0) Die("failover needs --file and --kill-pid");
  std::atomic<bool> killed{false};
  std::atomic<bool> stop{false};
  Clock::time_point kill_time;
  std::mutex mu;
  std::optional<Clock::time_point> first_ok_new;  // success of an upload started after the kill
  std::optional<Clock::time_point> first_ok_any;  // any upload completed after the kill
  uint64_t ok_before = 0, ok_after = 0, errors_after = 0;
  std::string first_error;
  const std::string run = std::to_string(static_cast<long long>(::getpid()));
  std::atomic<uint64_t> seq{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < c.threads; ++t) {
    threads.emplace_back([&] {
      const OpenFile f = OpenForUpload(c.file);
      Connection conn(c.host, c.port, c.timeout, false);
      while (!stop.load()) {
        const bool after = killed.load();
        const auto t0 = Clock::now();
        std::string error;
        const std::string name = c.prefix + "-" + run + "-" + std::to_string(seq.fetch_add(1)) + ".mp3";
        auto ok = UploadOnce(c, conn, f.fd, f.size, "filename=" + name, &error);
        const auto t1 = Clock::now();
        std::lock_guard lock(mu);
        if (!killed.load()) {
          ok_before += ok ? 1 : 0;
        } else if (ok) {
          ++ok_after;
          if (!first_ok_any && t1 >= kill_time) first_ok_any = t1;
          if (after && t0 >= kill_time && !first_ok_new) first_ok_new = t1;
        } else {
          ++errors_after;
          if (first_error.empty()) first_error = error;
        }
        if (!ok) {
          conn.Close();
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      ::close(f.fd);
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(c.kill_after));
  {
    std::lock_guard lock(mu);
    kill_time = Clock::now();
    if (::kill(c.kill_pid, SIGKILL) != 0)
      Die("kill " + std::to_string(c.kill_pid) + ": " + std::strerror(errno));
    killed.store(true);
  }
  const auto give_up = kill_time + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(c.duration > 0 ? c.duration : 30));
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard lock(mu);
    if (first_ok_new || Clock::now() >= give_up) break;
  }
  // A little more load after recovery, to see that it holds.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop.store(true);
  for (auto& th : threads) th.join();
  auto ms = [&](const std::optional<Clock::time_point>& t) {
    return t ? Seconds(*t - kill_time) * 1e3 : -1.0;
  };
  std::printf(
      "%s: gap_ms=%.0f first_ok_ms=%.0f ok_before_kill=%llu ok_after_kill=%llu errors_after_kill=%llu%s\n",
      c.label.c_str(), ms(first_ok_new), ms(first_ok_any), static_cast<unsigned long long>(ok_before),
      static_cast<unsigned long long>(ok_after), static_cast<unsigned long long>(errors_after),
      first_ok_new ? "" : " recovered=no");
  if (!first_error.empty())
    std::fprintf(stderr, "%s: first error after the kill: %s\n", c.label.c_str(), first_error.c_str());
  std::fflush(stdout);
  return first_ok_new ? 0 : 1;
}

// --- mkmp3 -------------------------------------------------------------------------------------------------

std::string Synchsafe(uint32_t n) {
  std::string out;
  out.push_back(static_cast<char>((n >> 21) & 0x7F));
  out.push_back(static_cast<char>((n >> 14) & 0x7F));
  out.push_back(static_cast<char>((n >> 7) & 0x7F));
  out.push_back(static_cast<char>(n & 0x7F));
  return out;
}

int RunMkMp3(const Config& c) {
  if (c.out.empty()) Die("mkmp3 needs --out");
  auto frame = [](const char* id, const std::string& text) {
    const std::string body = "\x03" + text;  // UTF-8
    return std::string(id, 4) + Synchsafe(static_cast<uint32_t>(body.size())) + std::string(2, '\0') + body;
  };
  const std::string frames =
      frame("TIT2", c.title) + frame("TPE1", "Bench Artist") + frame("TALB", "Bench Album");
  std::string head = "ID3";
  head += std::string("\x04\x00\x00", 3);
  head += Synchsafe(static_cast<uint32_t>(frames.size()));
  head += frames;
  constexpr size_t kFrameBytes = 417;  // 128 kbit/s at 44.1 kHz, no padding
  std::string audio("\xFF\xFB\x90\x00", 4);
  audio.resize(kFrameBytes, '\0');
  const uint64_t want = std::max<uint64_t>(c.size, head.size() + kFrameBytes);
  const uint64_t count = std::max<uint64_t>(1, (want - head.size() + kFrameBytes - 1) / kFrameBytes);
  FILE* f = std::fopen(c.out.c_str(), "wb");
  if (!f) Die("cannot create " + c.out);
  std::string block;  // many frames at once
  for (int i = 0; i < 2048; ++i) block += audio;
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  for (uint64_t left = count; ok && left > 0;) {
    const uint64_t n = std::min<uint64_t>(left, 2048);
    ok = std::fwrite(block.data(), 1, n * kFrameBytes, f) == n * kFrameBytes;
    left -= n;
  }
  if (std::fclose(f) != 0 || !ok) Die("writing " + c.out + " failed");
  return 0;
}

// --- main --------------------------------------------------------------------------------------------------

Config Parse(int argc, char** argv) {
  if (argc < 2)
    Die("usage: dispotify-http-bench get|upload|populate|search|song|failover|mkmp3 [options] (see the "
        "source)");
  Config c;
  c.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--target") {
      const std::string t = next();
      const auto colon = t.rfind(':');
      if (colon == std::string::npos) Die("--target is HOST:PORT");
      c.host = t.substr(0, colon);
      c.port = std::atoi(t.c_str() + colon + 1);
    } else if (a == "--path") {
      c.path = next();
    } else if (a == "--threads") {
      c.threads = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--duration") {
      c.duration = std::atof(next().c_str());
    } else if (a == "--requests") {
      c.requests = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--range-bytes") {
      c.range_bytes = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--file") {
      c.file = next();
    } else if (a == "--prefix") {
      c.prefix = next();
    } else if (a == "--consistency") {
      c.consistency = next();
      if (c.consistency != "stale" && c.consistency != "linearizable")
        Die("--consistency: stale or linearizable");
    } else if (a == "--queries") {
      c.queries = next();
    } else if (a == "--songs") {
      c.songs = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--kill-pid") {
      c.kill_pid = std::atoi(next().c_str());
    } else if (a == "--kill-after") {
      c.kill_after = std::atof(next().c_str());
    } else if (a == "--timeout") {
      c.timeout = std::atof(next().c_str());
    } else if (a == "--label") {
      c.label = next();
    } else if (a == "--seed") {
      c.seed = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--copy-body") {
      c.copy_body = true;
    } else if (a == "--out") {
      c.out = next();
    } else if (a == "--size") {
      c.size = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--title") {
      c.title = next();
    } else {
      Die("unknown option " + a);
    }
  }
  if (c.label.empty()) c.label = c.mode;
  if (c.mode != "mkmp3" && c.port <= 0) Die("--target HOST:PORT is required");
  if (c.duration <= 0 && c.requests == 0 &&
      (c.mode == "get" || c.mode == "upload" || c.mode == "search" || c.mode == "song"))
    Die("give --duration or --requests");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  Config c = Parse(argc, argv);
  if (c.mode == "get") return RunGet(c);
  if (c.mode == "upload") return RunUpload(c);
  if (c.mode == "populate") return RunPopulate(c);
  if (c.mode == "search") return RunSearch(c);
  if (c.mode == "song") return RunSong(c);
  if (c.mode == "failover") return RunFailover(c);
  if (c.mode == "mkmp3") return RunMkMp3(c);
  Die("unknown mode " + c.mode);
}
