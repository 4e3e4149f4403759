// What encryption at rest (node/replication/sealed_blob.h) costs a reader, against plain pread.
//
// Writes one file of `size` MiB of pseudo-random bytes twice into a temp directory: in clear,
// and sealed (AES-256-GCM through OpenSSL EVP, which uses AES-NI/VAES and PCLMULQDQ when the CPU
// has them). Both files are then in the page cache, so the figures are the CPU cost of reading,
// not the disk's. Then, for each file:
//   seq     `passes` full sequential reads in 1 MiB pieces (pread vs SealedReader::ReadPlain),
//           best pass
//   range   `ranges` reads of 1 MiB at random unaligned offsets (as a Range request for the
//           middle of a song), the same offsets for both files
// and prints (1 MiB = 2^20 B):
//   seal: write mib_s=<x>                                  (sealing, sink = the file)
//   seal: seq plain_mib_s=<x> sealed_mib_s=<y> ratio=<y/x>
//   seal: seq_cpu plain_mib_per_cpu_s=<x> sealed_mib_per_cpu_s=<y> ratio=<y/x>   (thread CPU time)
//   seal: range plain_p50_us=<x> sealed_p50_us=<y> sealed_mib_s=<z> chunks_per_read=<c>
// Every read is checked byte for byte against the clear file outside the timed sections.
//
// Usage: dispotify-seal-bench [--size-mib N=256] [--chunk-kib N=64] [--passes N=3] [--ranges N=200]
//          [--dir PATH] [--seed N]

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "node/replication/sealed_blob.h"

namespace {

using dispotify::Result;
using dispotify::Status;
using dispotify::replication::Keyring;
using dispotify::replication::SealedReader;
using dispotify::replication::SealKey;
using dispotify::replication::SealOptions;
using dispotify::replication::SealWriter;
using Clock = std::chrono::steady_clock;

constexpr size_t kMiB = size_t{1} << 20;

struct Config {
  uint64_t size_mib = 256;
  uint32_t chunk_kib = 64;
  int passes = 3;
  int ranges = 200;
  std::string dir;
  uint64_t seed = 20261207;
};

[[noreturn]] void Die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "seal-bench: %s: %s\n", what.c_str(), st.ToString().c_str());
  std::exit(1);
}

[[noreturn]] void DieErrno(const std::string& what) {
  std::fprintf(stderr, "seal-bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU time of this thread (user + system): on a shared machine the wall clock also counts the
// time other processes held the core, the CPU time only what the reads cost.
double CpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void PWriteAll(int fd, uint64_t offset, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) DieErrno("pwrite");
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

size_t PReadAll(int fd, uint64_t offset, char* p, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) DieErrno("pread");
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

int Run(const Config& cfg) {
  std::string dir = cfg.dir;
  bool own_dir = dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dispotify-seal-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) DieErrno("mkdtemp");
    dir = tmpl;
  }
  const std::string plain_path = dir + "/plain";
  const std::string sealed_path = dir + "/sealed";
  const uint64_t size = cfg.size_mib * kMiB;

  // A fixed key: the figures do not depend on its value.
  std::array<uint8_t, dispotify::replication::kSealKeySize> key_bytes{};
  for (size_t i = 0; i < key_bytes.size(); ++i) key_bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  Keyring ring;
  if (Status s = ring.Add("bench", SealKey(key_bytes)); !s.ok()) Die("keyring", s);

  int plain_fd = ::open(plain_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int sealed_fd = ::open(sealed_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (plain_fd < 0 || sealed_fd < 0) DieErrno("open");

  // --- write both files ---
  std::mt19937_64 rng(cfg.seed);
  std::vector<char> piece(kMiB);
  uint64_t sealed_at = 0;
  auto sink = [&](std::string_view b) {
    PWriteAll(sealed_fd, sealed_at, b.data(), b.size());
    sealed_at += b.size();
    return Status::Ok();
  };
  Result<std::unique_ptr<SealWriter>> writer =
      SealWriter::Create(ring, sink, SealOptions{cfg.chunk_kib * 1024});
  if (!writer.ok()) Die("SealWriter::Create", writer.status());
  Clock::duration seal_time{};
  for (uint64_t at = 0; at < size; at += kMiB) {
    for (size_t i = 0; i < kMiB; i += 8) {
      uint64_t v = rng();
      std::memcpy(piece.data() + i, &v, 8);
    }
    PWriteAll(plain_fd, at, piece.data(), kMiB);
    auto t0 = Clock::now();
    if (Status s = (*writer)->Write(std::string_view(piece.data(), kMiB)); !s.ok()) Die("seal", s);
    seal_time += Clock::now() - t0;
  }
  auto t0 = Clock::now();
  Result<std::string> header = (*writer)->Finish();
  if (!header.ok()) Die("seal finish", header.status());
  PWriteAll(sealed_fd, 0, header->data(), header->size());
  seal_time += Clock::now() - t0;
  std::printf("seal: write size_mib=%llu chunk_kib=%u mib_s=%.0f\n",
              static_cast<unsigned long long>(cfg.size_mib), cfg.chunk_kib,
              static_cast<double>(cfg.size_mib) / Seconds(seal_time));

  Result<std::unique_ptr<SealedReader>> reader = SealedReader::Open(sealed_fd, ring);
  if (!reader.ok()) Die("SealedReader::Open", reader.status());

  // --- correctness, untimed ---
  std::vector<char> want(kMiB);
  std::vector<char> got(kMiB);
  for (uint64_t at = 0; at < size; at += kMiB) {
    PReadAll(plain_fd, at, want.data(), kMiB);
    Result<size_t> n = (*reader)->ReadPlain(at, got.data(), kMiB);
    if (!n.ok()) Die("ReadPlain", n.status());
    if (*n != kMiB || std::memcmp(want.data(), got.data(), kMiB) != 0) {
      std::fprintf(stderr, "seal-bench: sealed file reads back wrong at %llu\n",
                   static_cast<unsigned long long>(at));
      return 1;
    }
  }

  // --- sequential ---
  double best_plain = 1e30;
  double best_sealed = 1e30;
  double best_plain_cpu = 1e30;
  double best_sealed_cpu = 1e30;
  uint64_t sink_sum = 0;  // keeps the reads observable
  for (int pass = 0; pass < cfg.passes; ++pass) {
    auto a = Clock::now();
    double c = CpuSeconds();
    for (uint64_t at = 0; at < size; at += kMiB) {
      PReadAll(plain_fd, at, got.data(), kMiB);
      sink_sum += static_cast<uint8_t>(got[at % kMiB]);
    }
    best_plain = std::min(best_plain, Seconds(Clock::now() - a));
    best_plain_cpu = std::min(best_plain_cpu, CpuSeconds() - c);
    a = Clock::now();
    c = CpuSeconds();
    for (uint64_t at = 0; at < size; at += kMiB) {
      Result<size_t> n = (*reader)->ReadPlain(at, got.data(), kMiB);
      if (!n.ok()) Die("ReadPlain", n.status());
      sink_sum += static_cast<uint8_t>(got[at % kMiB]);
    }
    best_sealed = std::min(best_sealed, Seconds(Clock::now() - a));
    best_sealed_cpu = std::min(best_sealed_cpu, CpuSeconds() - c);
  }
  const double plain_mib_s = static_cast<double>(cfg.size_mib) / best_plain;
  const double sealed_mib_s = static_cast<double>(cfg.size_mib) / best_sealed;
  std::printf("seal: seq plain_mib_s=%.0f sealed_mib_s=%.0f ratio=%.3f\n", plain_mib_s, sealed_mib_s,
              sealed_mib_s / plain_mib_s);
  const double mib = static_cast<double>(cfg.size_mib);
  std::printf("seal: seq_cpu plain_mib_per_cpu_s=%.0f sealed_mib_per_cpu_s=%.0f ratio=%.3f\n",
              mib / best_plain_cpu, mib / best_sealed_cpu, best_plain_cpu / best_sealed_cpu);

  // --- ranges ---
  std::uniform_int_distribution<uint64_t> pick(0, size - kMiB);
  std::vector<uint64_t> offsets(static_cast<size_t>(cfg.ranges));
  for (uint64_t& o : offsets) o = pick(rng);
  std::vector<double> plain_us;
  std::vector<double> sealed_us;
  const uint64_t chunks_before = (*reader)->chunks_decrypted();
  for (uint64_t o : offsets) {
    auto a = Clock::now();
    PReadAll(plain_fd, o, want.data(), kMiB);
    plain_us.push_back(Seconds(Clock::now() - a) * 1e6);
    a = Clock::now();
    Result<size_t> n = (*reader)->ReadPlain(o, got.data(), kMiB);
    sealed_us.push_back(Seconds(Clock::now() - a) * 1e6);
    if (!n.ok()) Die("ReadPlain", n.status());
    if (std::memcmp(want.data(), got.data(), kMiB) != 0) {
      std::fprintf(stderr, "seal-bench: range at %llu reads back wrong\n",
                   static_cast<unsigned long long>(o));
      return 1;
    }
  }
  const double chunks_per_read = static_cast<double>((*reader)->chunks_decrypted() - chunks_before) /
                                 static_cast<double>(offsets.size());
  double sealed_total_s = 0;
  for (double us : sealed_us) sealed_total_s += us / 1e6;
  std::sort(plain_us.begin(), plain_us.end());
  std::sort(sealed_us.begin(), sealed_us.end());
  std::printf(
      "seal: range reads=%d plain_p50_us=%.0f sealed_p50_us=%.0f sealed_p99_us=%.0f sealed_mib_s=%.0f "
      "chunks_per_read=%.1f\n",
      cfg.ranges, plain_us[plain_us.size() / 2], sealed_us[sealed_us.size() / 2],
      sealed_us[sealed_us.size() * 99 / 100], static_cast<double>(offsets.size()) / sealed_total_s,
      chunks_per_read);
  std::fprintf(stderr, "(warm page cache; checksum of touched bytes %llu)\n",
               static_cast<unsigned long long>(sink_sum));

  reader->reset();
  ::close(plain_fd);
  ::close(sealed_fd);
  std::error_code ec;
  if (own_dir) {
    std::filesystem::remove_all(dir, ec);
  } else {
    std::filesystem::remove(plain_path, ec);
    std::filesystem::remove(sealed_path, ec);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "missing value for %s\n", arg.c_str());
      return 2;
    }
    std::string value = argv[++i];
    if (arg == "--size-mib") {
      cfg.size_mib = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--chunk-kib") {
      cfg.chunk_kib = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    } else if (arg == "--passes") {
      cfg.passes = std::atoi(value.c_str());
    } else if (arg == "--ranges") {
      cfg.ranges = std::atoi(value.c_str());
    } else if (arg == "--dir") {
      cfg.dir = value;
    } else if (arg == "--seed") {
      cfg.seed = std::strtoull(value.c_str(), nullptr, 10);
    } else {
      std::fprintf(stderr,
                   "usage: dispotify-seal-bench [--size-mib N] [--chunk-kib N] [--passes N] [--ranges N] "
                   "[--dir PATH] [--seed N]\n");
      return 2;
    }
  }
  if (cfg.size_mib == 0 || cfg.chunk_kib == 0 || cfg.passes < 1 || cfg.ranges < 1) {
    std::fprintf(stderr, "seal-bench: sizes and counts must be positive\n");
    return 2;
  }
  return Run(cfg);
}
