#include "e2e/cluster_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/completion_queue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/base64.h"
#include "common/sha256.h"
#include "common/tls/grpc_credentials.h"
#include "common/tls/pki.h"

#ifndef DISPOTIFY_NODE_BINARY
#error "DISPOTIFY_NODE_BINARY must name the dispotify-node executable"
#endif

namespace dispotify::e2e {

using namespace std::chrono_literals;

namespace {

// The first of the kernel's ephemeral ports (the local ports of outgoing connections).
int FirstEphemeralPort() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  return in >> low ? low : 32768;
}

bool CanListenOn(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

// A port the kernel hands out for bind(0) comes from the ephemeral range, and between this
// reservation and the node's own bind it can become the local port of an outgoing connection of a
// test running in parallel (a node then failed to start with "Address already in use"). So ports
// are drawn at random below that range, checked free, and never handed out twice by a process.
int FreePort() {
  static std::mutex mu;
  static std::set<int> given;
  static std::mt19937 rng(std::random_device{}() ^ static_cast<uint32_t>(::getpid()));
  std::lock_guard<std::mutex> lock(mu);
  const int low = 10000;
  const int high = FirstEphemeralPort() - 1;
  if (high - low < 1000) throw std::runtime_error("the ephemeral port range leaves no room for test ports");
  std::uniform_int_distribution<int> pick(low, high);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(rng);
    if (given.contains(port) || !CanListenOn(port)) continue;
    given.insert(port);
    return port;
  }
  throw std::runtime_error("no free loopback port below the ephemeral range");
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void WriteKeyringFile(const std::string& path, const std::vector<std::string>& key_ids) {
  std::string text = "# written by the e2e harness\n";
  for (const std::string& id : key_ids) {
    const Sha256::Digest key = Sha256Digest("e2e keyring key " + id);
    text += id + ":" + Base64Encode(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())) +
            "\n";
  }
  // Written in place with the mode set first: the node refuses a keyring others may read.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write keyring " + path);
  ::fchmod(fd, 0600);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write keyring " + path);
}

Process::Process(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  // A test binary that crashes runs no destructor: the kernel kills the node when its parent
  // dies. The signal follows the death of the forking *thread*, not the process, so only forks
  // from the main thread (where gtest runs the tests) ask for it; a node a test starts from a
  // thread of its own would otherwise die when that thread ends.
  const pid_t parent = ::getpid();
  const bool from_main_thread = ::gettid() == parent;
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (from_main_thread) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before the prctl
    }
    ::setpgid(0, 0);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    ::execv(cargv[0], cargv.data());
    std::perror("execv");
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also from the parent: no window where a kill misses the group
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

bool Process::running() {
  return !Wait(0ms).has_value();
}

void Process::Signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  auto end = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      ::kill(-pid_, SIGKILL);  // anything left in the group
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

namespace {

// Replaces `path` by rename, so a node polling it never reads half a file.
void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::permissions(tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::rename(tmp, path);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) throw std::runtime_error(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

// Drives the test process's gRPC client connections between calls, as a node's server threads
// drive a node's. A test process has no server: a connection attempt that the channel starts on
// its own (after its backoff, e.g. to a restarted node) is only polled while a call waits on it,
// and a fail-fast call on a channel in TRANSIENT_FAILURE does not wait; otherwise only gRPC's
// backup poller moves it on, one step per 5 s tick. A TLS handshake takes several steps, so the
// attempt ran into its 20 s connect deadline and the next one likewise: a test reading from a
// restarted node never got through, with mTLS only (plaintext took one tick). Waiting on an empty
// completion queue polls every descriptor (gRPC's epoll1 engine keeps one epoll set).
class ClientPoller {
 public:
  ClientPoller() : thread_([this] { Run(); }) {}
  ~ClientPoller() {
    stop_ = true;
    thread_.join();
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  ClientPoller(const ClientPoller&) = delete;
  ClientPoller& operator=(const ClientPoller&) = delete;

 private:
  void Run() {
    void* tag = nullptr;
    bool ok = false;
    while (!stop_) (void)cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + 50ms);
  }

  grpc::CompletionQueue cq_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: started once the queue exists
};

void PollClientConnections() {
  static ClientPoller poller;
}

}  // namespace

Cluster::Cluster(int n, std::string cluster_id)
    : base_(MakeTempDir("dispotify-e2e")), cluster_id_(std::move(cluster_id)), status_client_({}, 1000ms) {
  PollClientConnections();
  // One CA per test cluster, made in-process (a P-256 key: milliseconds).
  std::filesystem::create_directories(base_ + "/tls");
  auto ca = Must(tls::CreateCa(cluster_id_, tls::Validity::Days(std::chrono::system_clock::now(), 30)), "CA");
  ca_cert_pem_ = Must(tls::CertToPem(ca.cert.get()), "CA PEM");
  ca_key_pem_ = Must(tls::KeyToPem(ca.key.get()), "CA key PEM");
  WriteFileAtomically(TlsCaPath(), ca_cert_pem_);
  for (int i = 0; i < n; ++i) AddSpec();
  // DISPOTIFY_E2E_INSECURE_GRPC=1: every cluster plaintext, to tell a TLS problem from another.
  if (const char* v = std::getenv("DISPOTIFY_E2E_INSECURE_GRPC"); v != nullptr && std::string(v) == "1")
    tls_ = false;
  status_client_ = server::KvClient({}, 1000ms, ChannelCredentials());
}

void Cluster::UseInsecureGrpc() {
  tls_ = false;
  status_client_ = server::KvClient({}, 1000ms, ChannelCredentials());
}

std::string Cluster::TlsCertPath(uint64_t id) const {
  return base_ + "/tls/node-" + std::to_string(id) + ".crt";
}
std::string Cluster::TlsKeyPath(uint64_t id) const {
  return base_ + "/tls/node-" + std::to_string(id) + ".key";
}
std::string Cluster::TlsCaPath() const {
  return base_ + "/tls/ca.crt";
}

namespace {
// A leaf of `ca_cert_pem`/`ca_key_pem` naming node `id` of `cluster_id`, for 127.0.0.1 and localhost.
tls::CertifiedKey IssueLeafFor(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                               const std::string& cluster_id, uint64_t id, int days) {
  tls::CertifiedKey ca;
  ca.cert = Must(tls::CertFromPem(ca_cert_pem), "CA");
  ca.key = Must(tls::KeyFromPem(ca_key_pem), "CA key");
  tls::LeafRequest req;
  req.identity = tls::Identity::Node(cluster_id, NodeId(id));
  req.ip_addresses = {"127.0.0.1"};
  req.dns_names = {"localhost"};
  req.validity = tls::Validity::Days(std::chrono::system_clock::now(), days);
  return Must(tls::IssueLeaf(ca, req), "leaf");
}
}  // namespace

std::pair<std::string, std::string> Cluster::IssueCertificate(uint64_t node_id, const std::string& name) {
  auto leaf = IssueLeafFor(ca_cert_pem_, ca_key_pem_, cluster_id_, node_id, 30);
  const std::string cert = base_ + "/tls/" + name + ".crt";
  const std::string key = base_ + "/tls/" + name + ".key";
  WriteFileAtomically(key, Must(tls::KeyToPem(leaf.key.get()), "key PEM"));
  WriteFileAtomically(cert, Must(tls::CertToPem(leaf.cert.get()), "cert PEM"));
  return {cert, key};
}

void Cluster::StartCaRotation() {
  auto ca = Must(tls::CreateCa(cluster_id_, tls::Validity::Days(std::chrono::system_clock::now(), 30)), "CA");
  const std::string old_cas = ca_file_pem_.empty() ? ca_cert_pem_ : ca_file_pem_;
  ca_cert_pem_ = Must(tls::CertToPem(ca.cert.get()), "CA PEM");
  ca_key_pem_ = Must(tls::KeyToPem(ca.key.get()), "CA key PEM");
  ca_file_pem_ = old_cas + ca_cert_pem_;
  WriteFileAtomically(TlsCaPath(), ca_file_pem_);
}

void Cluster::FinishCaRotation() {
  ca_file_pem_ = ca_cert_pem_;
  WriteFileAtomically(TlsCaPath(), ca_file_pem_);
  // The status client loaded node 1's certificate of the old CA when it was made: the nodes now
  // refuse it on any new connection.
  status_client_ = server::KvClient({}, 1000ms, ChannelCredentials());
}

double Cluster::IssueNodeCertificate(uint64_t id, int days) {
  auto leaf = IssueLeafFor(ca_cert_pem_, ca_key_pem_, cluster_id_, id, days);
  // Key first, then certificate: the node sees a mismatched pair in between, refuses it and keeps
  // its current set until the certificate follows (credentials.h).
  WriteFileAtomically(TlsKeyPath(id), Must(tls::KeyToPem(leaf.key.get()), "key PEM"));
  WriteFileAtomically(TlsCertPath(id), Must(tls::CertToPem(leaf.cert.get()), "cert PEM"));
  return std::chrono::duration<double>(tls::NotAfter(leaf.cert.get()).time_since_epoch()).count();
}

std::shared_ptr<grpc::ChannelCredentials> Cluster::ChannelCredentials(uint64_t as) const {
  if (!tls_) return grpc::InsecureChannelCredentials();
  return Must(tls::ClientChannelCredentials({TlsCertPath(as), TlsKeyPath(as), TlsCaPath()}, cluster_id_),
              "client credentials");
}

Cluster::~Cluster() {
  procs_.clear();  // SIGKILL whatever still runs
  if (std::getenv("DISPOTIFY_E2E_KEEP") == nullptr) std::filesystem::remove_all(base_);
}

uint64_t Cluster::AddSpec() {
  NodeSpec s;
  s.id = specs_.size() + 1;
  s.port = FreePort();
  s.metrics_port = FreePort();
  s.http_port = FreePort();
  s.data_dir = base_ + "/node-" + std::to_string(s.id);
  specs_[s.id] = s;
  IssueNodeCertificate(s.id);
  return s.id;
}

std::string Cluster::Peers(size_t count) const {
  std::string out;
  size_t i = 0;
  for (const auto& [id, s] : specs_) {
    if (count != 0 && i++ >= count) break;
    if (!out.empty()) out += ",";
    out += std::to_string(id) + "=" + s.peer_address();
  }
  return out;
}

std::vector<std::string> Cluster::BaseArgs(uint64_t id) const {
  const NodeSpec& s = specs_.at(id);
  std::vector<std::string> args = {DISPOTIFY_NODE_BINARY,
                                   "--node-id",
                                   std::to_string(id),
                                   "--cluster-id",
                                   cluster_id_,
                                   "--data-dir",
                                   s.data_dir,
                                   "--listen",
                                   s.address(),
                                   "--metrics-listen",
                                   "127.0.0.1:" + std::to_string(s.metrics_port),
                                   "--http-listen",
                                   "127.0.0.1:" + std::to_string(s.http_port),
                                   "--tick-ms",
                                   "50"};
  args.push_back("--web-root=");  // the API alone: a test that wants the web UI passes --web-root
  // Users and roles are on by default; the tests of the data plane and of consensus are not about
  // access control, so they turn them off. A test of security passes --auth true later in the
  // arguments (the last one wins).
  args.push_back("--auth=false");
  if (tls_) {
    for (const std::string& a :
         {std::string("--tls-cert-file"), TlsCertPath(id), std::string("--tls-key-file"), TlsKeyPath(id),
          std::string("--tls-ca-file"), TlsCaPath(), std::string("--tls-poll-interval-ms"),
          std::to_string(kTlsPollMs)})
      args.push_back(a);
  } else {
    args.push_back("--insecure-grpc=true");
  }
  if (s.peer_port != 0) {
    args.push_back("--advertise");
    args.push_back(s.peer_address());
  }
  if (!s.keyring_file.empty()) {
    args.push_back("--encryption-keyring-file");
    args.push_back(s.keyring_file);
  }
  return args;
}

std::string Cluster::LogPath(uint64_t id) const {
  return base_ + "/node-" + std::to_string(id) + ".log";
}

void Cluster::Start(uint64_t id, const std::vector<std::string>& extra, size_t initial) {
  std::vector<std::string> args = BaseArgs(id);
  args.push_back("--peers");
  args.push_back(Peers(initial));
  args.insert(args.end(), base_flags_.begin(), base_flags_.end());
  args.insert(args.end(), common_flags_.begin(), common_flags_.end());
  args.insert(args.end(), extra.begin(), extra.end());
  {
    std::ofstream log(LogPath(id), std::ios::app);
    log << "==== start #" << ++starts_[id] << " ====\n";
  }
  procs_[id] = std::make_unique<Process>(args, LogPath(id));
}

void Cluster::StartAll() {
  for (const auto& [id, s] : specs_) Start(id);
}

void Cluster::Kill9(uint64_t id) {
  auto it = procs_.find(id);
  if (it == procs_.end()) return;
  it->second->Signal(SIGKILL);
  it->second->Wait(10s);
  procs_.erase(it);
}

std::optional<int> Cluster::Stop(uint64_t id, std::chrono::milliseconds timeout) {
  auto it = procs_.find(id);
  if (it == procs_.end()) return std::nullopt;
  it->second->Signal(SIGTERM);
  auto code = it->second->Wait(timeout);
  procs_.erase(it);
  return code;
}

std::optional<int> Cluster::RunToExit(uint64_t id, const std::vector<std::string>& extra,
                                      std::chrono::milliseconds timeout) {
  std::vector<std::string> args = BaseArgs(id);
  args.insert(args.end(), extra.begin(), extra.end());
  {
    std::ofstream log(LogPath(id), std::ios::app);
    log << "==== run to exit #" << ++starts_[id] << " ====\n";
  }
  Process p(args, LogPath(id));
  return p.Wait(timeout);
}

Process* Cluster::process(uint64_t id) {
  auto it = procs_.find(id);
  return it == procs_.end() ? nullptr : it->second.get();
}

std::optional<v1::StatusResponse> Cluster::Status(uint64_t id) {
  v1::StatusResponse resp;
  if (!status_client_.Status(specs_.at(id).address(), &resp).ok()) return std::nullopt;
  return resp;
}

uint64_t Cluster::WaitLeader(std::chrono::milliseconds timeout, std::optional<uint64_t> excluding) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    uint64_t leader = 0;
    bool agree = true;
    for (const auto& [id, p] : procs_) {
      auto st = Status(id);
      if (!st) continue;
      if (st->role() == "leader" && (!excluding || id != *excluding)) leader = id;
    }
    if (leader != 0) {
      auto lst = Status(leader);
      for (const auto& [id, p] : procs_) {
        auto st = Status(id);
        if (st && lst && st->term() == lst->term() && st->leader_id() != leader) agree = false;
      }
      if (agree) return leader;
    }
    std::this_thread::sleep_for(50ms);
  }
  return 0;
}

bool Cluster::WaitApplied(uint64_t id, uint64_t index, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    auto st = Status(id);
    if (st && st->applied_index() >= index) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::vector<std::string> Cluster::Endpoints() const {
  std::vector<std::string> out;
  for (const auto& [id, s] : specs_) out.push_back(s.address());
  return out;
}

void Cluster::DumpLogs() const {
  for (const auto& [id, s] : specs_) {
    std::ifstream in(LogPath(id));
    if (!in) continue;
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    std::fprintf(stderr, "----- node %lu log (last 40 lines of %zu) -----\n", static_cast<unsigned long>(id),
                 lines.size());
    for (size_t i = lines.size() > 40 ? lines.size() - 40 : 0; i < lines.size(); ++i) {
      std::fprintf(stderr, "%s\n", lines[i].c_str());
    }
  }
}

}  // namespace dispotify::e2e
