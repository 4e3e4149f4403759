#pragma once
// A real Kubernetes control plane for a test suite: e2e/k8s/control-plane.sh (etcd,
// kube-apiserver, kube-controller-manager on loopback) in a fresh temporary directory, stopped at
// the end of the suite whatever happened (and by the script's own TTL watchdog if the test process
// dies first).
//
// The binaries come from e2e/k8s/install-k8s.sh's cache. When they are missing the suite is
// skipped, loudly, unless DISPOTIFY_REQUIRE_K8S is set (to anything but "" or "0"): then every test
// fails instead. scripts/test.sh (so CI) installs the tools and sets it, so a missing binary there
// is a failure, never a silent skip. The fixture never builds them itself (control-plane.sh would
// start a 10-minute build).

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/exec.h"

namespace dispotify::e2e_k8s {

class ControlPlane {
 public:
  ControlPlane() = default;
  ~ControlPlane();  // Stop()
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // Where install-k8s.sh keeps the binaries.
  static std::string BinDir();
  // Whether kube-apiserver, kube-controller-manager, kubectl and etcd are all there; `why` says
  // what is missing.
  static bool Available(std::string* why);
  // Whether DISPOTIFY_REQUIRE_K8S asks for missing binaries to fail the tests instead of skipping.
  static bool Required();

  // Starts in a new temporary directory; the script stops everything after `ttl` regardless.
  Status Start(std::chrono::seconds ttl = std::chrono::seconds(900));
  // Idempotent. Keeps the directory (logs) when DISPOTIFY_KEEP_K8S_DIR is set.
  void Stop();

  bool running() const { return running_; }
  const std::string& dir() const { return dir_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  // kubectl --kubeconfig <ours> args...
  testing_exec::ExecResult Kubectl(const std::vector<std::string>& args) const;
  // A value of the control plane's DIR/env file (ETCD_PORT, API_PORT, API_SERVER); "" if absent.
  std::string Env(const std::string& key) const;
  // The last lines of a component's log ("kube-apiserver", "etcd", ...), for failure messages.
  std::string LogTail(const std::string& component, int lines = 30) const;

 private:
  void KillAll();

  std::string dir_;
  std::string kubeconfig_;
  bool running_ = false;
};

// A suite sharing one control plane: started in SetUpTestSuite, stopped in TearDownTestSuite.
// SetUp skips each test (printing why) when the binaries are missing (fails it when Required()),
// and fails it when the start failed.
class ControlPlaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  static ControlPlane& plane() { return *plane_; }

 private:
  static std::unique_ptr<ControlPlane> plane_;
  static std::string skip_reason_;
  static Status start_status_;
};

}  // namespace dispotify::e2e_k8s
