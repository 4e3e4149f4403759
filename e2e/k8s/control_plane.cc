#include "e2e/k8s/control_plane.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

namespace dispotify::e2e_k8s {
namespace {

const std::string kScripts = DISPOTIFY_SOURCE_DIR "/e2e/k8s";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string TempBase() {
  const char* base = std::getenv("TMPDIR");
  return base != nullptr && *base != '\0' ? base : "/tmp";
}

}  // namespace

ControlPlane::~ControlPlane() {
  Stop();
}

std::string ControlPlane::BinDir() {
  FILE* p = ::popen((kScripts + "/install-k8s.sh --print-bin").c_str(), "r");
  if (p == nullptr) return "";
  char buf[4096];
  std::string out;
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ::pclose(p);
  return Trim(out);
}

bool ControlPlane::Required() {
  const char* v = std::getenv("DISPOTIFY_REQUIRE_K8S");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

bool ControlPlane::Available(std::string* why) {
  const std::string bin = BinDir();
  std::string missing;
  for (const char* tool : {"kube-apiserver", "kube-controller-manager", "kubectl"}) {
    if (::access((bin + "/" + tool).c_str(), X_OK) != 0) missing += " " + bin + "/" + tool;
  }
  bool etcd = false;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string p = path;
    size_t start = 0;
    while (start <= p.size() && !etcd) {
      const size_t end = p.find(':', start);
      const std::string d = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
      etcd = !d.empty() && ::access((d + "/etcd").c_str(), X_OK) == 0;
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  // Without its stamp install-k8s.sh (which control-plane.sh runs) would start a build: binaries
  // without one are from a build still running or cut short.
  if (missing.empty() && ::access((bin + "/.stamp").c_str(), R_OK) != 0) {
    missing += " " + bin + "/.stamp (a build of the binaries is running or was cut short)";
  }
  if (!etcd) missing += " etcd (Debian package etcd-server)";
  if (missing.empty()) return true;
  *why = "missing:" + missing + " (run e2e/k8s/install-k8s.sh)";
  return false;
}

Status ControlPlane::Start(std::chrono::seconds ttl) {
  if (running_) return Status::Ok();
  std::string tmpl = TempBase() + "/dispotify-k8s-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return Status::FromErrno(errno, "mkdtemp");
  dir_ = tmpl;
  const std::string scratch = dir_ + "/exec";
  std::filesystem::create_directories(scratch);
  auto r = testing_exec::Exec(
      {kScripts + "/control-plane.sh", "start", dir_ + "/cp", "--ttl", std::to_string(ttl.count())}, scratch);
  if (r.code != 0) {
    // The script stops what it started on failure; make sure.
    testing_exec::Exec({kScripts + "/control-plane.sh", "stop", dir_ + "/cp"}, scratch);
    return Status::Unavailable("control-plane.sh start failed (exit " + std::to_string(r.code) +
                               "): " + r.err + r.out);
  }
  kubeconfig_ = dir_ + "/cp/kubeconfig";
  running_ = true;
  return Status::Ok();
}

void ControlPlane::Stop() {
  if (dir_.empty()) return;
  const bool keep = std::getenv("DISPOTIFY_KEEP_K8S_DIR") != nullptr;
  if (running_) {
    // The state is thrown away: SIGKILL saves the ~7 s of graceful shutdowns per test process
    // (each test is a process of its own under ctest). The script then stops its watchdog.
    if (!keep) KillAll();
    testing_exec::Exec({kScripts + "/control-plane.sh", "stop", dir_ + "/cp"}, dir_ + "/exec");
    running_ = false;
  }
  if (!keep) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  } else {
    std::fprintf(stderr, "control plane state and logs kept in %s\n", dir_.c_str());
  }
  dir_.clear();
}

void ControlPlane::KillAll() {
  std::vector<pid_t> pids;
  for (const char* component : {"kube-controller-manager", "kube-apiserver", "etcd"}) {
    const std::string text = Trim(testing_exec::ReadWholeFile(dir_ + "/cp/" + component + ".pid"));
    if (text.empty()) continue;
    const pid_t pid = static_cast<pid_t>(std::atoi(text.c_str()));
    if (pid > 1 && ::kill(pid, SIGKILL) == 0) pids.push_back(pid);
  }
  // Not our children (the script started them): wait for them to be gone, a few seconds at most.
  for (int i = 0; i < 100; ++i) {
    bool alive = false;
    for (pid_t pid : pids) alive = alive || ::kill(pid, 0) == 0;
    if (!alive) break;
    ::usleep(50 * 1000);
  }
}

testing_exec::ExecResult ControlPlane::Kubectl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {BinDir() + "/kubectl", "--kubeconfig", kubeconfig_};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string scratch = dir_ + "/exec";
  return testing_exec::Exec(argv, scratch);
}

std::string ControlPlane::Env(const std::string& key) const {
  std::istringstream in(testing_exec::ReadWholeFile(dir_ + "/cp/env"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

std::string ControlPlane::LogTail(const std::string& component, int lines) const {
  auto r = testing_exec::Exec({"tail", "-n", std::to_string(lines), dir_ + "/cp/" + component + ".log"},
                              dir_ + "/exec");
  return r.out;
}

std::unique_ptr<ControlPlane> ControlPlaneTest::plane_;
std::string ControlPlaneTest::skip_reason_;
Status ControlPlaneTest::start_status_;

void ControlPlaneTest::SetUpTestSuite() {
  skip_reason_.clear();
  start_status_ = Status::Ok();
  if (std::string why; !ControlPlane::Available(&why)) {
    skip_reason_ = "no Kubernetes control plane binaries: " + why;
    if (ControlPlane::Required()) {
      std::fprintf(
          stderr,
          "\n*** FAILING the Kubernetes end-to-end tests: %s ***\n"
          "*** DISPOTIFY_REQUIRE_K8S is set (scripts/test.sh installs the tools and sets it). ***\n\n",
          skip_reason_.c_str());
    } else {
      std::fprintf(stderr,
                   "\n*** SKIPPING the Kubernetes end-to-end tests: %s ***\n"
                   "*** CI installs them: a skip there is a bug. ***\n\n",
                   skip_reason_.c_str());
    }
    return;
  }
  plane_ = std::make_unique<ControlPlane>();
  start_status_ = plane_->Start();
}

void ControlPlaneTest::TearDownTestSuite() {
  plane_.reset();
}

void ControlPlaneTest::SetUp() {
  if (!skip_reason_.empty()) {
    if (ControlPlane::Required()) FAIL() << skip_reason_ << " (DISPOTIFY_REQUIRE_K8S is set: not skipping)";
    GTEST_SKIP() << skip_reason_;
  }
  ASSERT_TRUE(start_status_.ok()) << start_status_.ToString();
}

}  // namespace dispotify::e2e_k8s
