// dispotify-pki run as a program: what it writes, with which modes, and that a node can load it.
#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "common/tls/credentials.h"
#include "common/tls/pki.h"
#include "tests/support/exec.h"

namespace dispotify::tls {
namespace {

using testing_exec::Exec;
using testing_exec::ReadWholeFile;

class PkiToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pki_tool_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directory(dir_ + "/scratch");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  testing_exec::ExecResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), DISPOTIFY_PKI_BINARY);
    return Exec(args, dir_ + "/scratch");
  }
  static mode_t Mode(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::string dir_;
};

TEST_F(PkiToolTest, CaAndNodeCertificate) {
  auto ca = Run({"ca", "--out", dir_ + "/ca", "--cluster", "local", "--days", "3650"});
  ASSERT_EQ(ca.code, 0) << ca.err;
  EXPECT_EQ(Mode(dir_ + "/ca/ca.key"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/ca/ca.crt"), 0644u);
  EXPECT_EQ(Mode(dir_ + "/ca"), 0700u);

  auto issue = Run({"issue", "--ca", dir_ + "/ca", "--out", dir_ + "/node1", "--cluster", "local", "--node",
                    "1", "--dns", "localhost", "--dns", "node-1.local", "--ip", "127.0.0.1", "--days", "90"});
  ASSERT_EQ(issue.code, 0) << issue.err;
  EXPECT_NE(issue.out.find("spiffe://dispotify/local/node/1"), std::string::npos) << issue.out;
  EXPECT_EQ(Mode(dir_ + "/node1/tls.key"), 0600u);
  EXPECT_EQ(Mode(dir_ + "/node1/tls.crt"), 0644u);
  EXPECT_EQ(Mode(dir_ + "/node1/ca.crt"), 0644u);
  EXPECT_EQ(ReadWholeFile(dir_ + "/node1/ca.crt"), ReadWholeFile(dir_ + "/ca/ca.crt"));
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/node1")) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }

  auto cert = CertFromPem(ReadWholeFile(dir_ + "/node1/tls.crt"));
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(X509_check_host(cert->get(), "node-1.local", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert->get(), "127.0.0.1", 0), 1);
  auto days = std::chrono::duration_cast<std::chrono::hours>(NotAfter(cert->get()) -
                                                             std::chrono::system_clock::now());
  EXPECT_GT(days.count(), 24 * 89);
  EXPECT_LE(days.count(), 24 * 90);

  auto creds = ReloadingCredentials::Load(
      {dir_ + "/node1/tls.crt", dir_ + "/node1/tls.key", dir_ + "/node1/ca.crt"}, {});
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  EXPECT_EQ((*creds)->Current()->identity, Identity::Node("local", NodeId(1)));

  // Issuing again into the same directory is a rotation the node picks up.
  auto again = Run({"issue", "--ca", dir_ + "/ca", "--out", dir_ + "/node1", "--cluster", "local", "--node",
                    "1", "--days", "90"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_TRUE((*creds)->Poll().ok());
  EXPECT_EQ((*creds)->generation(), 2u);
}

TEST_F(PkiToolTest, ClientCertificate) {
  ASSERT_EQ(Run({"ca", "--out", dir_ + "/ca", "--cluster", "local", "--days", "30"}).code, 0);
  auto issue = Run({"issue", "--ca", dir_ + "/ca", "--out", dir_ + "/admin", "--cluster", "local", "--kind",
                    "admin", "--name", "alice", "--days", "1"});
  ASSERT_EQ(issue.code, 0) << issue.err;
  auto cert = CertFromPem(ReadWholeFile(dir_ + "/admin/tls.crt"));
  ASSERT_TRUE(cert.ok());
  auto id = ParseIdentity(cert->get());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, (Identity{"local", "admin", "alice"}));
}

TEST_F(PkiToolTest, RefusalsAndUsage) {
  ASSERT_EQ(Run({"ca", "--out", dir_ + "/ca", "--cluster", "local", "--days", "30"}).code, 0);
  std::string key_before = ReadWholeFile(dir_ + "/ca/ca.key");
  auto twice = Run({"ca", "--out", dir_ + "/ca", "--cluster", "local", "--days", "30"});
  EXPECT_EQ(twice.code, 1);
  EXPECT_NE(twice.err.find("exists"), std::string::npos) << twice.err;
  EXPECT_EQ(ReadWholeFile(dir_ + "/ca/ca.key"), key_before);

  auto wrong_cluster = Run({"issue", "--ca", dir_ + "/ca", "--out", dir_ + "/n", "--cluster", "other",
                            "--node", "1", "--days", "1"});
  EXPECT_NE(wrong_cluster.code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/n/tls.key"));

  EXPECT_EQ(Run({}).code, 2);
  EXPECT_EQ(Run({"frobnicate"}).code, 2);
  EXPECT_EQ(Run({"ca", "--out", dir_ + "/x", "--cluster", "local"}).code, 2);                  // no --days
  EXPECT_EQ(Run({"ca", "--out", dir_ + "/x", "--cluster", "local", "--days", "0"}).code, 2);   // too few
  EXPECT_EQ(Run({"ca", "--out", dir_ + "/x", "--cluster", "local", "--days", "3x"}).code, 2);  // not a number
  EXPECT_EQ(Run({"ca", "--out", dir_ + "/x", "--cluster", "local", "--days", "1", "--x", "y"}).code, 2);
  EXPECT_EQ(Run({"issue", "--ca", dir_ + "/ca", "--out", dir_ + "/n", "--cluster", "local", "--node", "1",
                 "--kind", "admin", "--name", "a", "--days", "1"})
                .code,
            2);
  EXPECT_EQ(Run({"issue", "--ca", dir_ + "/ca", "--out", dir_ + "/n", "--cluster", "local", "--node", "1",
                 "--ip", "not-an-ip", "--days", "1"})
                .code,
            2);
  EXPECT_EQ(Run({"issue", "--ca", dir_ + "/nope", "--out", dir_ + "/n", "--cluster", "local", "--node", "1",
                 "--days", "1"})
                .code,
            1);
}

}  // namespace
}  // namespace dispotify::tls
