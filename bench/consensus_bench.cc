// dispotify-consensus-bench: a closed-loop load generator for consensus writes. It drives either a
// Dispotify cluster (dispotify.v1.KV/Put) or an etcd cluster (etcdserverpb.KV/Put) with the same
// client code, so that the two sides differ only in the server: the same key and value sizes, the
// same number of outstanding requests, the same gRPC library and the same measurement.
//
// Each client thread owns one channel (its own TCP connection) and one CompletionQueue and keeps
// clients/threads unary calls in flight; a completed call is replaced at once by the next. The
// first --warmup seconds are not measured; the next --duration seconds are. Prints, on stdout:
//   side=<name> ops=<n/s> p50_ms=<x> p99_ms=<y> max_ms=<z> errors=<n>
// and, on stderr, details (leader, threads, the client's own CPU use, so a saturated client shows).
//
// Requests go to the leader: for etcd the member whose Maintenance.Status names itself as leader
// (a follower would forward the proposal, adding a hop); for Dispotify the node that accepts a Put,
// following "not-leader:<id>:<address>" redirects.

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dispotify/v1/kv.grpc.pb.h"
#include "etcd/etcd_kv.grpc.pb.h"

namespace dispotify::bench {
namespace {

using Clock = std::chrono::steady_clock;

enum class Target { kDispotify, kEtcd };

struct Options {
  Target target = Target::kDispotify;
  std::vector<std::string> endpoints;
  std::string side;  // name printed in the result line; defaults to the target's name
  int clients = 64;  // requests in flight, summed over all threads
  int threads = 1;   // client threads, each with its own connection and CompletionQueue
  double duration_s = 10;
  double warmup_s = 2;
  int value_size = 256;
  int key_size = 16;
  bool random_keys = false;  // default: sequential, distinct keys
  bool any_member = false;   // etcd only: send to the first endpoint even if it is a follower
  double wait_s = 30;        // how long to wait for a leader before giving up
  int request_timeout_ms = 10000;
};

[[noreturn]] void Usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "error: %s\n", error);
  std::fprintf(stderr,
               "usage: dispotify-consensus-bench --target dispotify|etcd --endpoints host:port[,...]\n"
               "         [--side NAME] [--clients 64] [--threads 1] [--duration 10] [--warmup 2]\n"
               "         [--value-size 256] [--key-size 16] [--keys sequential|random] [--wait 30]\n"
               "         [--request-timeout-ms 10000] [--any-member 0|1 (etcd: do not seek the leader)]\n");
  std::exit(2);
}

std::vector<std::string> SplitCommas(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    std::string_view part = s.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

double ParseNumber(const char* flag, const std::string& value) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end != '\0' || !std::isfinite(v) || v < 0) {
    std::fprintf(stderr, "error: %s: not a non-negative number: '%s'\n", flag, value.c_str());
    std::exit(2);
  }
  return v;
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  bool have_target = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") Usage(nullptr);
    if (i + 1 >= argc) Usage(("missing value for " + flag).c_str());
    const std::string value = argv[++i];
    if (flag == "--target") {
      if (value == "dispotify") {
        o.target = Target::kDispotify;
      } else if (value == "etcd") {
        o.target = Target::kEtcd;
      } else {
        Usage("--target must be dispotify or etcd");
      }
      have_target = true;
    } else if (flag == "--endpoints") {
      o.endpoints = SplitCommas(value);
    } else if (flag == "--side") {
      o.side = value;
    } else if (flag == "--clients") {
      o.clients = static_cast<int>(ParseNumber("--clients", value));
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(ParseNumber("--threads", value));
    } else if (flag == "--duration") {
      o.duration_s = ParseNumber("--duration", value);
    } else if (flag == "--warmup") {
      o.warmup_s = ParseNumber("--warmup", value);
    } else if (flag == "--value-size") {
      o.value_size = static_cast<int>(ParseNumber("--value-size", value));
    } else if (flag == "--key-size") {
      o.key_size = static_cast<int>(ParseNumber("--key-size", value));
    } else if (flag == "--keys") {
      if (value != "sequential" && value != "random") Usage("--keys must be sequential or random");
      o.random_keys = value == "random";
    } else if (flag == "--any-member") {
      if (value != "0" && value != "1") Usage("--any-member must be 0 or 1");
      o.any_member = value == "1";
    } else if (flag == "--wait") {
      o.wait_s = ParseNumber("--wait", value);
    } else if (flag == "--request-timeout-ms") {
      o.request_timeout_ms = static_cast<int>(ParseNumber("--request-timeout-ms", value));
    } else {
      Usage(("unknown flag " + flag).c_str());
    }
  }
  if (!have_target) Usage("--target is required");
  if (o.endpoints.empty()) Usage("--endpoints is required");
  if (o.clients < 1 || o.threads < 1 || o.duration_s <= 0)
    Usage("--clients, --threads, --duration must be > 0");
  if (o.key_size < 16) Usage("--key-size must be at least 16");
  o.threads = std::min(o.threads, o.clients);
  if (o.side.empty()) o.side = o.target == Target::kEtcd ? "etcd" : "dispotify";
  return o;
}

// Both services have the same shape: a unary Put whose request has `key` and `value` bytes.
struct EtcdApi {
  using Stub = etcdserverpb::KV::Stub;
  using Request = etcdserverpb::PutRequest;
  using Response = etcdserverpb::PutResponse;
  static std::unique_ptr<Stub> NewStub(const std::shared_ptr<grpc::Channel>& ch) {
    return etcdserverpb::KV::NewStub(ch);
  }
};

struct DispotifyApi {
  using Stub = dispotify::v1::KV::Stub;
  using Request = dispotify::v1::PutRequest;
  using Response = dispotify::v1::PutResponse;
  static std::unique_ptr<Stub> NewStub(const std::shared_ptr<grpc::Channel>& ch) {
    return dispotify::v1::KV::NewStub(ch);
  }
};

// A channel with its own subchannel pool, so each client thread gets its own TCP connection
// instead of gRPC sharing one among channels to the same address.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void SetDeadline(grpc::ClientContext& ctx, std::chrono::milliseconds timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}

// Returns the endpoint of the etcd leader: the member whose Status names itself as leader.
std::optional<std::string> FindEtcdLeader(const Options& o) {
  const auto give_up = Clock::now() + std::chrono::duration<double>(o.wait_s);
  while (Clock::now() < give_up) {
    for (const std::string& ep : o.endpoints) {
      auto channel = NewChannel(ep);
      auto maintenance = etcdserverpb::Maintenance::NewStub(channel);
      grpc::ClientContext ctx;
      SetDeadline(ctx, std::chrono::milliseconds(2000));
      etcdserverpb::StatusResponse status;
      if (!maintenance->Status(&ctx, etcdserverpb::StatusRequest(), &status).ok()) continue;
      if (status.leader() == 0) continue;
      if (!o.any_member && status.leader() != status.header().member_id()) continue;
      // Check that it takes writes now (a fresh cluster may still be applying its configuration).
      auto kv = etcdserverpb::KV::NewStub(channel);
      grpc::ClientContext put_ctx;
      SetDeadline(put_ctx, std::chrono::milliseconds(2000));
      etcdserverpb::PutRequest req;
      req.set_key("bench-probe");
      req.set_value("x");
      etcdserverpb::PutResponse resp;
      const grpc::Status s = kv->Put(&put_ctx, req, &resp);
      if (s.ok()) {
        std::fprintf(stderr, "side=%s leader=%s member_id=%" PRIx64 "\n", o.side.c_str(), ep.c_str(),
                     status.leader());
        return ep;
      }
      std::fprintf(stderr, "probe put on %s: %s\n", ep.c_str(), s.error_message().c_str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return std::nullopt;
}

// Returns the address of the Dispotify leader: the node that accepts a Put, found by following
// "not-leader:<id>:<address>" redirects (an empty address means the leader is unknown yet).
std::optional<std::string> FindDispotifyLeader(const Options& o) {
  const auto give_up = Clock::now() + std::chrono::duration<double>(o.wait_s);
  size_t next = 0;
  std::string current = o.endpoints[0];
  std::string last_error;
  while (Clock::now() < give_up) {
    auto kv = dispotify::v1::KV::NewStub(NewChannel(current));
    grpc::ClientContext ctx;
    SetDeadline(ctx, std::chrono::milliseconds(2000));
    dispotify::v1::PutRequest req;
    req.set_key("bench-probe");
    req.set_value("x");
    dispotify::v1::PutResponse resp;
    const grpc::Status s = kv->Put(&ctx, req, &resp);
    if (s.ok()) {
      std::fprintf(stderr, "side=%s leader=%s\n", o.side.c_str(), current.c_str());
      return current;
    }
    last_error = current + ": " + std::to_string(s.error_code()) + " " + s.error_message();
    constexpr std::string_view kNotLeader = "not-leader:";
    const std::string& msg = s.error_message();
    std::string hint;
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION && msg.starts_with(kNotLeader)) {
      const size_t colon = msg.find(':', kNotLeader.size());  // after <id>
      if (colon != std::string::npos) hint = msg.substr(colon + 1);
    }
    if (!hint.empty() && hint != current) {
      current = hint;
      continue;
    }
    current = o.endpoints[++next % o.endpoints.size()];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "no leader within %.0f s; last error: %s\n", o.wait_s, last_error.c_str());
  return std::nullopt;
}

// What one client thread saw. Latencies are of successful calls completed inside the window.
struct ThreadResult {
  std::vector<uint32_t> latencies_us;
  uint64_t errors = 0;
  std::string first_error;
};

template <class Api>
class ClientThread {
 public:
  ClientThread(const Options& o, const std::string& address, int index, int in_flight,
               Clock::time_point measure_from, Clock::time_point measure_to)
      : o_(o),
        stub_(Api::NewStub(NewChannel(address))),
        index_(index),
        in_flight_(in_flight),
        measure_from_(measure_from),
        measure_to_(measure_to),
        rng_(static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ULL + 1) {
    std::string value(static_cast<size_t>(o.value_size), '\0');
    for (char& c : value) c = static_cast<char>('a' + rng_() % 26);
    request_.set_value(value);
    result_.latencies_us.reserve(1 << 20);
  }

  void Run() {
    for (int i = 0; i < in_flight_; ++i) Start(new Call);
    int outstanding = in_flight_;
    void* tag = nullptr;
    bool ok = false;
    while (outstanding > 0 && cq_.Next(&tag, &ok)) {
      auto* call = static_cast<Call*>(tag);
      if (call->backing_off) {  // the alarm after an error fired
        call->backing_off = false;
        if (Clock::now() < measure_to_) {
          Start(call);
        } else {
          delete call;
          --outstanding;
        }
        continue;
      }
      const Clock::time_point now = Clock::now();
      if (call->status.ok()) {
        if (now >= measure_from_ && now < measure_to_) {
          const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - call->start).count();
          result_.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
        }
      } else {
        if (result_.errors++ == 0) {
          result_.first_error =
              std::to_string(call->status.error_code()) + " " + call->status.error_message();
        }
      }
      if (now >= measure_to_) {
        delete call;
        --outstanding;
      } else if (!call->status.ok()) {
        // Do not spin on a failing server: retry this slot after a short pause.
        call->backing_off = true;
        call->alarm.Set(&cq_, std::chrono::system_clock::now() + std::chrono::milliseconds(10), call);
      } else {
        Start(call);
      }
    }
    cq_.Shutdown();
    while (cq_.Next(&tag, &ok)) {
    }
  }

  ThreadResult& result() { return result_; }

 private:
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    typename Api::Response response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<typename Api::Response>> reader;
    grpc::Alarm alarm;
    bool backing_off = false;
    Clock::time_point start;
  };

  void Start(Call* call) {
    call->ctx = std::make_unique<grpc::ClientContext>();
    SetDeadline(*call->ctx, std::chrono::milliseconds(o_.request_timeout_ms));
    request_.set_key(NextKey());
    call->response.Clear();
    call->start = Clock::now();
    // The request is serialized here, so request_ can be reused for the next call at once.
    call->reader = stub_->PrepareAsyncPut(call->ctx.get(), request_, &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }

  // Fixed-size keys: "b", 3 hex digits of the thread, 12 decimal digits of a counter (or of a
  // random number), left-padded with 'k' up to --key-size.
  std::string NextKey() {
    constexpr uint64_t kModulus = 1'000'000'000'000ULL;
    const uint64_t n = (o_.random_keys ? rng_() : seq_++) % kModulus;
    char buf[32];
    std::snprintf(buf, sizeof buf, "b%03x%012" PRIu64, index_ & 0xfff, n);
    std::string key(static_cast<size_t>(o_.key_size - kKeyCore), 'k');
    key.append(buf, kKeyCore);
    return key;
  }

  static constexpr int kKeyCore = 16;

  const Options& o_;
  std::unique_ptr<typename Api::Stub> stub_;
  grpc::CompletionQueue cq_;
  typename Api::Request request_;
  const int index_;
  const int in_flight_;
  const Clock::time_point measure_from_;
  const Clock::time_point measure_to_;
  std::mt19937_64 rng_;
  uint64_t seq_ = 0;
  ThreadResult result_;
};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

template <class Api>
int RunLoad(const Options& o, const std::string& leader) {
  const Clock::time_point begin = Clock::now();
  const Clock::time_point measure_from =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  const Clock::time_point measure_to =
      measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  std::vector<std::unique_ptr<ClientThread<Api>>> clients;
  for (int t = 0; t < o.threads; ++t) {
    const int in_flight = o.clients / o.threads + (t < o.clients % o.threads ? 1 : 0);
    clients.push_back(std::make_unique<ClientThread<Api>>(o, leader, t, in_flight, measure_from, measure_to));
  }
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c] { c->Run(); });

  // The client's own CPU use during the measured window, to show it is not the bottleneck.
  std::this_thread::sleep_until(measure_from);
  const double cpu_from = CpuSeconds();
  std::this_thread::sleep_until(measure_to);
  const double cpu_to = CpuSeconds();
  for (auto& t : threads) t.join();

  std::vector<uint32_t> all;
  uint64_t errors = 0;
  std::string first_error;
  for (auto& c : clients) {
    ThreadResult& r = c->result();
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    if (errors == 0 && r.errors > 0) first_error = r.first_error;
    errors += r.errors;
  }
  std::sort(all.begin(), all.end());
  const auto percentile_ms = [&all](double q) {
    if (all.empty()) return 0.0;
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(all.size())));
    return all[std::min(all.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
  };
  const double ops = static_cast<double>(all.size()) / o.duration_s;
  std::fprintf(
      stderr,
      "side=%s requests=%zu clients=%d threads=%d value_size=%d key_size=%d client_cpu=%.2f cores%s%s\n",
      o.side.c_str(), all.size(), o.clients, o.threads, o.value_size, o.key_size,
      (cpu_to - cpu_from) / o.duration_s, errors > 0 ? " first_error=" : "", first_error.c_str());
  std::printf("side=%s ops=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%" PRIu64 "\n", o.side.c_str(),
              ops, percentile_ms(0.50), percentile_ms(0.99), percentile_ms(1.0), errors);
  std::fflush(stdout);
  return all.empty() ? 1 : 0;
}

int Main(int argc, char** argv) {
  const Options o = ParseOptions(argc, argv);
  const std::optional<std::string> leader =
      o.target == Target::kEtcd ? FindEtcdLeader(o) : FindDispotifyLeader(o);
  if (!leader) {
    std::fprintf(stderr, "side=%s: no leader found among %zu endpoints\n", o.side.c_str(),
                 o.endpoints.size());
    return 1;
  }
  return o.target == Target::kEtcd ? RunLoad<EtcdApi>(o, *leader) : RunLoad<DispotifyApi>(o, *leader);
}

}  // namespace
}  // namespace dispotify::bench

int main(int argc, char** argv) {
  return dispotify::bench::Main(argc, argv);
}
