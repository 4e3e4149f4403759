// dispotify-operator end to end: a real kube-apiserver and kube-controller-manager (the
// StatefulSet and garbage collector controllers), the test kubelet running real dispotify-node
// processes in network namespaces (e2e/k8s/testkubelet), and the operator binary.
//
// The tests of this suite run in order on one cluster, each starting from the state the previous
// one left (a cluster's life: create, use, scale, lose the operator, lose a pod, lose a disk).
// Needs root (network namespaces) and the Kubernetes binaries (install-k8s.sh); skipped without
// them as ControlPlaneTest says.

#include <cpprest/json.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "e2e/cluster_harness.h"
#include "e2e/http_helpers.h"
#include "e2e/k8s/control_plane.h"
#include "tests/support/audio_files.h"
#include "tests/support/exec.h"

namespace dispotify::e2e_k8s {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using web::json::value;

constexpr const char* kNs = "music-e2e";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class OperatorE2E : public ControlPlaneTest {
 protected:
  static void SetUpTestSuite() {
    ControlPlaneTest::SetUpTestSuite();
    if (!plane().running()) return;
    work_ = e2e::MakeTempDir("operator-e2e");
    auto r = plane().Kubectl({"apply", "--server-side", "-f", DISPOTIFY_SOURCE_DIR "/crds/"});
    if (r.code != 0) {
      setup_error_ = "kubectl apply crds: " + r.err;
      return;
    }
    r = plane().Kubectl({"create", "namespace", kNs});
    if (r.code != 0) {
      setup_error_ = "kubectl create namespace: " + r.err;
      return;
    }
    if (!plane()
             .Kubectl({"wait", "--for=condition=Established", "crd/dispotifyclusters.dispotify.io",
                       "--timeout=30s"})
             .code == 0) {
      setup_error_ = "the CRD was not established";
      return;
    }
    FILE* p = ::popen(DISPOTIFY_SOURCE_DIR "/e2e/k8s/build-testkubelet.sh --print", "r");
    char buf[4096] = {};
    std::string kubelet;
    while (p != nullptr && std::fgets(buf, sizeof(buf), p) != nullptr) kubelet += buf;
    if (p != nullptr) ::pclose(p);
    kubelet = Trim(kubelet);
    if (kubelet.empty() || !fs::exists(kubelet)) {
      setup_error_ = "no test kubelet (e2e/k8s/build-testkubelet.sh): '" + kubelet + "'";
      return;
    }
    state_dir_ = work_ + "/kubelet";
    // The pods' "image": the node and its sibling tagger, copied out of the build tree, which may
    // be under /tmp, where every pod mounts an emptyDir of its own that would hide them.
    char images[] = "/var/tmp/dispotify-e2e-images.XXXXXX";
    if (::mkdtemp(images) == nullptr) {
      setup_error_ = "mkdtemp /var/tmp";
      return;
    }
    images_ = images;
    const std::string built = fs::path(DISPOTIFY_NODE_BIN).parent_path();
    std::error_code ec;
    for (const char* bin : {"dispotify-node", "dispotify-tagger"}) {
      fs::copy_file(built + "/" + bin, images_ + "/" + bin, ec);
      fs::permissions(images_,
                      fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec,
                      ec);
      if (ec) {
        setup_error_ = "copy " + std::string(bin) + ": " + ec.message();
        return;
      }
    }
    kubelet_ = std::make_unique<e2e::Process>(
        std::vector<std::string>{kubelet, "--kubeconfig", plane().kubeconfig(), "--state-dir", state_dir_,
                                 "--namespace", kNs, "--image",
                                 "dispotify/node=" + images_ + "/dispotify-node", "--ttl", "1200s"},
        work_ + "/kubelet.log");
    StartOperator({});
  }

  static void TearDownTestSuite() {
    operator_.reset();
    if (kubelet_) {
      kubelet_->Signal(SIGTERM);  // stops every pod process and removes its network
      kubelet_->Wait(30s);
      kubelet_.reset();
    }
    ControlPlaneTest::TearDownTestSuite();
    if (!images_.empty()) fs::remove_all(images_);
  }

  void SetUp() override {
    ControlPlaneTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static void StartOperator(const std::vector<std::string>& env) {
    operator_.reset();
    std::vector<std::string> argv = {"/usr/bin/env"};
    for (const auto& e : env) argv.push_back(e);
    argv.insert(argv.end(),
                {DISPOTIFY_OPERATOR_BIN, "--kubeconfig", plane().kubeconfig(), "--namespace", kNs,
                 "--lease-namespace", kNs, "--listen", "127.0.0.1:" + std::to_string(e2e::FreePort()),
                 "--identity", "e2e-" + std::to_string(++operator_starts_)});
    operator_ = std::make_unique<e2e::Process>(argv, work_ + "/operator.log");
  }

  static testing_exec::ExecResult Kubectl(std::vector<std::string> args) {
    args.insert(args.begin(), {"-n", kNs});
    return plane().Kubectl(args);
  }

  static value Get(const std::string& what) {
    auto r = Kubectl({"get", what, "-o", "json"});
    if (r.code != 0) return value::null();
    try {
      return value::parse(r.out);
    } catch (const std::exception&) {
      return value::null();
    }
  }

  static std::string Str(const value& v, std::initializer_list<const char*> path) {
    const value* at = &v;
    for (const char* p : path) {
      if (!at->is_object() || !at->has_field(p)) return "";
      at = &at->at(p);
    }
    if (at->is_string()) return at->as_string();
    if (at->is_number()) return std::to_string(at->as_number().to_int64());
    if (at->is_boolean()) return at->as_bool() ? "true" : "false";
    return "";
  }

  // The cluster's status says Running with `voters` voters, all healthy and caught up, no operation.
  static bool Settled(int voters, std::string* why) {
    const value c = Get("dspc/music");
    const std::string phase = Str(c, {"status", "phase"});
    const std::string op =
        Str(c, {"status", "operation", "type"}) + "/" + Str(c, {"status", "operation", "step"});
    *why = "phase " + phase + ", operation " + op + ", replicas " + Str(c, {"status", "replicas"}) +
           ", ready " + Str(c, {"status", "readyReplicas"}) + ", leader " + Str(c, {"status", "leader"});
    if (phase != "Running" || op != "/" || Str(c, {"status", "replicas"}) != std::to_string(voters))
      return false;
    if (Str(c, {"status", "readyReplicas"}) != std::to_string(voters)) return false;
    if (Str(c, {"status", "observedGeneration"}) != Str(c, {"metadata", "generation"})) return false;
    const value sts = Get("statefulset/music");
    if (Str(sts, {"spec", "replicas"}) != std::to_string(voters)) return false;
    const value& members = c.at("status").at("members");
    int good = 0;
    for (const auto& m : members.as_array()) {
      const std::string role = Str(m, {"role"});
      good += (role == "leader" || role == "voter") && Str(m, {"healthy"}) == "true" &&
                      Str(m, {"caughtUp"}) == "true"
                  ? 1
                  : 0;
    }
    return good == voters && static_cast<int>(members.size()) == voters;
  }

  static std::string WaitSettled(int voters, std::chrono::seconds timeout = 180s) {
    std::string why;
    if (e2e::Eventually([&] { return Settled(voters, &why); }, timeout)) return "";
    return why + "\noperator log:\n" + Tail(work_ + "/operator.log") + "\nkubelet log:\n" +
           Tail(work_ + "/kubelet.log");
  }

  static std::string Tail(const std::string& path, size_t lines = 40) {
    std::ifstream in(path);
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);) all.push_back(line);
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += all[i] + "\n";
    return out;
  }

  static std::string PodIp(int ordinal) {
    return Str(Get("pod/music-" + std::to_string(ordinal)), {"status", "podIP"});
  }

  static testing_exec::ExecResult Ctl(int ordinal, std::vector<std::string> args) {
    args.insert(args.begin(), {DISPOTIFY_CTL_BIN, "--endpoints", "http://" + PodIp(ordinal) + ":8080"});
    return testing_exec::Exec(args, work_);
  }

  // The node_uuid member `node_id` has in the status.
  static std::string MemberUuid(uint64_t node_id) {
    const value c = Get("dspc/music");
    if (!c.has_field("status") || !c.at("status").has_field("members")) return "";
    for (const auto& m : c.at("status").at("members").as_array()) {
      if (Str(m, {"nodeId"}) == std::to_string(node_id)) return Str(m, {"nodeUuid"});
    }
    return "";
  }

  static inline std::string work_, state_dir_, setup_error_, images_;
  static inline std::unique_ptr<e2e::Process> kubelet_, operator_;
  static inline int operator_starts_ = 0;
};

TEST_F(OperatorE2E, ACustomResourceBecomesAThreeMemberCluster) {
  // The documented minimal example, with the image the test kubelet runs.
  const std::string manifest = work_ + "/music.yaml";
  {
    std::ofstream out(manifest);
    out << testing_exec::ReadWholeFile(DISPOTIFY_SOURCE_DIR "/deploy/kubernetes/examples/minimal.yaml")
        << "  image: dispotify/node:e2e\n";
  }
  auto r = Kubectl({"apply", "-f", manifest});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string why = WaitSettled(3);
  ASSERT_TRUE(why.empty()) << why;
  const value c = Get("dspc/music");
  EXPECT_EQ(Str(c, {"status", "bootstrapped"}), "true");
  EXPECT_EQ(Str(c, {"status", "replicationFactor"}), "3");
  // Every member is a distinct node with its own incarnation.
  std::set<std::string> uuids;
  for (uint64_t id = 1; id <= 3; ++id) uuids.insert(MemberUuid(id));
  EXPECT_EQ(uuids.size(), 3u);
  EXPECT_FALSE(uuids.contains(""));
  // What kubectl shows.
  r = Kubectl({"get", "dspc"});
  EXPECT_NE(r.out.find("Running"), std::string::npos) << r.out;
  // The PodDisruptionBudget keeps a quorum, the peer Service publishes pods that are not Ready.
  EXPECT_EQ(Str(Get("pdb/music"), {"spec", "minAvailable"}), "2");
  EXPECT_EQ(Str(Get("service/music-peers"), {"spec", "publishNotReadyAddresses"}), "true");
  // Nobody may bootstrap a second group any more.
  EXPECT_NE(Str(Get("configmap/music-config"), {"data", "config.yaml"}).find("join: true"),
            std::string::npos);
  // Events tell what happened.
  r = Kubectl({"get", "events", "--field-selector", "involvedObject.kind=DispotifyCluster", "-o",
               "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}"});
  EXPECT_NE(r.out.find("AddingLearner"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PromotingMember"), std::string::npos) << r.out;
}

TEST_F(OperatorE2E, TheClusterStoresAndStreamsSongs) {
  const std::string song = work_ + "/before-scaling.mp3";
  { std::ofstream(song) << testing_audio::MakeMp3("Before scaling", 40); }
  auto up = Ctl(0, {"upload", song});
  ASSERT_EQ(up.code, 0) << up.out << up.err;
  auto ls = Ctl(2, {"ls"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_NE(ls.out.find("before-scaling"), std::string::npos) << ls.out;
  auto got = Ctl(1, {"stream", "before-scaling.mp3", "-o", work_ + "/got.mp3"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(testing_exec::ReadWholeFile(work_ + "/got.mp3"), testing_exec::ReadWholeFile(song));
}

TEST_F(OperatorE2E, KubectlScaleGrowsAndShrinksTheGroupOneMemberAtATime) {
  auto r = Kubectl({"scale", "dspc/music", "--replicas=5"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::string why = WaitSettled(5);
  ASSERT_TRUE(why.empty()) << why;
  EXPECT_EQ(Str(Get("pdb/music"), {"spec", "minAvailable"}), "3");
  r = Kubectl({"scale", "dspc/music", "--replicas=3"});
  ASSERT_EQ(r.code, 0) << r.err;
  why = WaitSettled(3);
  ASSERT_TRUE(why.empty()) << why;
  // The song outlived both changes.
  auto got = Ctl(2, {"stream", "before-scaling.mp3", "-o", work_ + "/after-scaling.mp3"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(testing_exec::ReadWholeFile(work_ + "/after-scaling.mp3"),
            testing_exec::ReadWholeFile(work_ + "/before-scaling.mp3"));
  // A refused spec is refused by the API server, with the CRD's message.
  r = Kubectl({"patch", "dspc/music", "--type=merge", "-p", R"({"spec":{"replicationFactor":4}})"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("replicationFactor"), std::string::npos) << r.err;
}

TEST_F(OperatorE2E, AnOperatorThatDiesBetweenJournalAndActionResumes) {
  // This operator exits right after recording "promote" for the new member, before promoting it.
  // The pod comes back on the volume the scale-down kept, so the node may first run as its removed
  // incarnation and be replaced by a fresh one: the promote is then that of a replace-member.
  StartOperator({"DISPOTIFY_OPERATOR_CRASH_AFTER_JOURNAL=*/promote"});
  auto r = Kubectl({"scale", "dspc/music", "--replicas=4"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(operator_->Wait(120s), 86) << Tail(work_ + "/operator.log");
  const value c = Get("dspc/music");
  const std::string type = Str(c, {"status", "operation", "type"});
  EXPECT_TRUE(type == "add-member" || type == "replace-member") << type;
  EXPECT_EQ(Str(c, {"status", "operation", "step"}), "promote");
  EXPECT_EQ(Str(c, {"status", "operation", "nodeId"}), "4");
  // A new operator (a new leader: the old lease expires) finds the step and finishes it.
  StartOperator({});
  std::string why = WaitSettled(4);
  ASSERT_TRUE(why.empty()) << why;
  r = Kubectl({"scale", "dspc/music", "--replicas=3"});
  ASSERT_EQ(r.code, 0) << r.err;
  why = WaitSettled(3);
  ASSERT_TRUE(why.empty()) << why;
}

TEST_F(OperatorE2E, ADeletedPodComesBackAsTheSameMember) {
  const std::string before = MemberUuid(2);
  const std::string uid = Str(Get("pod/music-1"), {"metadata", "uid"});
  auto r = Kubectl({"delete", "pod", "music-1", "--wait=true", "--timeout=60s"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(e2e::Eventually([&] { return Str(Get("pod/music-1"), {"metadata", "uid"}) != uid; }, 60s));
  const std::string why = WaitSettled(3);
  ASSERT_TRUE(why.empty()) << why;
  EXPECT_EQ(MemberUuid(2), before) << "its disk came back with it: the same incarnation";
}

TEST_F(OperatorE2E, APodBackWithAnEmptyDiskIsReplacedAsANewIncarnation) {
  const std::string before = MemberUuid(3);
  ASSERT_FALSE(before.empty());
  const std::string pvc_uid = Str(Get("pvc/data-music-2"), {"metadata", "uid"});
  ASSERT_FALSE(pvc_uid.empty());
  // The disk is lost while the node runs: empty its volume, then kill the process (the container
  // restarts on the empty volume, as after a disk replacement).
  const std::string volume = state_dir_ + "/volumes/" + pvc_uid;
  ASSERT_TRUE(fs::exists(volume)) << volume;
  const std::string pid =
      Trim(testing_exec::ReadWholeFile(state_dir_ + "/pods/" + std::string(kNs) + "_music-2/pid"));
  ASSERT_FALSE(pid.empty());
  ::kill(static_cast<pid_t>(std::stol(pid)), SIGSTOP);
  for (const auto& entry : fs::directory_iterator(volume)) fs::remove_all(entry.path());
  ::kill(static_cast<pid_t>(std::stol(pid)), SIGKILL);
  std::string after;
  ASSERT_TRUE(e2e::Eventually(
      [&] {
        after = MemberUuid(3);
        std::string why;
        return !after.empty() && after != before && Settled(3, &why);
      },
      180s))
      << "member 3 is still " << after << "\n"
      << Tail(work_ + "/operator.log");
  // The song is still there, with R copies again.
  auto got = Ctl(2, {"stream", "before-scaling.mp3", "-o", work_ + "/after-wipe.mp3"});
  ASSERT_EQ(got.code, 0) << got.err;
}

}  // namespace
}  // namespace dispotify::e2e_k8s
