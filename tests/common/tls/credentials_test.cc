#include "common/tls/credentials.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace dispotify::tls {
namespace {

using std::chrono::hours;

const TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

struct Pem {
  std::string cert, key;
};

Pem ToPem(const CertifiedKey& ck) {
  return Pem{*CertToPem(ck.cert.get()), *KeyToPem(ck.key.get())};
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "credentials_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ca_ = std::move(CreateCa("c1", Validity::Days(kNow, 365))).value();
    files_ = {dir_ + "/tls.crt", dir_ + "/tls.key", dir_ + "/ca.crt"};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CertifiedKey Leaf(const CertifiedKey& ca, Identity id, Validity v = Validity::Days(kNow, 30)) {
    auto leaf = IssueLeaf(ca, LeafRequest{std::move(id), {}, {}, v});
    EXPECT_TRUE(leaf.ok()) << leaf.status().ToString();
    return std::move(leaf).value();
  }

  // Written to a temporary name and renamed, as a rotation tool does (a new inode each time).
  // Each write also gets a later mtime than the last, as writes a moment apart would.
  void Write(const std::string& path, const std::string& data) {
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << data;
    }
    ++tick_;
    timespec times[2] = {{tick_, 0}, {tick_, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, tmp.c_str(), times, 0), 0);
    std::filesystem::rename(tmp, path);
  }
  void WriteAll(const Pem& leaf, const CertifiedKey& ca) {
    Write(files_.cert, leaf.cert);
    Write(files_.key, leaf.key);
    Write(files_.ca, *CertToPem(ca.cert.get()));
  }

  ReloadingCredentials::Options Opts() {
    ReloadingCredentials::Options o;
    o.now = [this] { return now_.load(); };
    return o;
  }

  std::string dir_;
  CertifiedKey ca_;
  CredentialFiles files_;
  std::atomic<TimePoint> now_{kNow};
  time_t tick_ = 1'700'000'000;
};

TEST_F(CredentialsTest, LoadsAndExposesTheBundle) {
  CertifiedKey leaf = Leaf(ca_, Identity::Node("c1", NodeId(4)));
  Pem pem = ToPem(leaf);
  WriteAll(pem, ca_);
  auto creds = ReloadingCredentials::Load(files_, Opts());
  ASSERT_TRUE(creds.ok()) << creds.status().ToString();
  auto b = (*creds)->Current();
  EXPECT_EQ(b->generation, 1u);
  EXPECT_EQ((*creds)->generation(), 1u);
  EXPECT_EQ(b->identity, Identity::Node("c1", NodeId(4)));
  EXPECT_EQ(b->cert_pem, pem.cert);
  EXPECT_EQ(b->key_pem, pem.key);
  EXPECT_EQ(b->not_after, kNow + hours(24 * 30));
  EXPECT_DOUBLE_EQ((*creds)->not_after_seconds(), 1'800'000'000.0 + 30 * 86400);
  EXPECT_TRUE((*creds)->Poll().ok());
  EXPECT_EQ((*creds)->generation(), 1u);
}

TEST_F(CredentialsTest, FirstLoadMustSucceed) {
  CertifiedKey a = Leaf(ca_, Identity::Node("c1", NodeId(1)));
  CertifiedKey b = Leaf(ca_, Identity::Node("c1", NodeId(1)));
  WriteAll(Pem{ToPem(a).cert, ToPem(b).key}, ca_);
  EXPECT_EQ(ReloadingCredentials::Load(files_, Opts()).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove(files_.key);
  EXPECT_EQ(ReloadingCredentials::Load(files_, Opts()).status().code(), StatusCode::kNotFound);
}

TEST_F(CredentialsTest, HalfWrittenRotationKeepsTheOldBundleUntilWhole) {
  CertifiedKey first = Leaf(ca_, Identity::Node("c1", NodeId(1)));
  WriteAll(ToPem(first), ca_);
  int changes = 0;
  auto opts = Opts();
  opts.on_change = [&](const std::shared_ptr<const CredentialBundle>& b) {
    ++changes;
    EXPECT_EQ(b->generation, 2u);
  };
  auto creds = std::move(ReloadingCredentials::Load(files_, opts)).value();

  CertifiedKey second = Leaf(ca_, Identity::Node("c1", NodeId(1)), Validity::Days(kNow, 60));
  Pem next = ToPem(second);
  Write(files_.cert, next.cert);  // the key is not there yet
  Status s = creds->Poll();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("does not belong"), std::string::npos) << s.ToString();
  EXPECT_EQ(creds->last_error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(creds->refused_reloads(), 1u);
  EXPECT_EQ(creds->generation(), 1u);
  EXPECT_EQ(creds->Current()->cert_pem, ToPem(first).cert);
  EXPECT_FALSE(creds->Poll().ok());  // tried again, still refused
  EXPECT_EQ(changes, 0);

  Write(files_.key, next.key);
  EXPECT_TRUE(creds->Poll().ok());
  EXPECT_TRUE(creds->last_error().ok());
  EXPECT_EQ(creds->generation(), 2u);
  EXPECT_EQ(creds->Current()->cert_pem, next.cert);
  EXPECT_EQ(creds->Current()->not_after, kNow + hours(24 * 60));
  EXPECT_DOUBLE_EQ(creds->not_after_seconds(), 1'800'000'000.0 + 60 * 86400);
  EXPECT_EQ(changes, 1);
}

TEST_F(CredentialsTest, RefusesACertificateFromAnotherCa) {
  WriteAll(ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1)))), ca_);
  auto creds = std::move(ReloadingCredentials::Load(files_, Opts())).value();
  CertifiedKey other_ca = std::move(CreateCa("c1", Validity::Days(kNow, 365))).value();
  Pem foreign = ToPem(Leaf(other_ca, Identity::Node("c1", NodeId(1))));
  Write(files_.cert, foreign.cert);
  Write(files_.key, foreign.key);
  Status s = creds->Poll();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(creds->generation(), 1u);
  EXPECT_NE(creds->Current()->cert_pem, foreign.cert);

  // Its CA arriving too makes the set whole again: a CA rotation done in one go.
  Write(files_.ca, *CertToPem(other_ca.cert.get()));
  EXPECT_TRUE(creds->Poll().ok());
  EXPECT_EQ(creds->generation(), 2u);
}

TEST_F(CredentialsTest, RefusesAnotherIdentity) {
  WriteAll(ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1)))), ca_);
  auto opts = Opts();
  opts.expected_identity = Identity::Node("c1", NodeId(1));
  auto creds = std::move(ReloadingCredentials::Load(files_, opts)).value();
  Pem node2 = ToPem(Leaf(ca_, Identity::Node("c1", NodeId(2))));
  Write(files_.cert, node2.cert);
  Write(files_.key, node2.key);
  Status s = creds->Poll();
  EXPECT_NE(s.message().find("expected spiffe://dispotify/c1/node/1"), std::string::npos) << s.ToString();
  EXPECT_EQ(creds->generation(), 1u);
}

TEST_F(CredentialsTest, NotYetValidIsRetriedUntilTheClockCatchesUp) {
  WriteAll(ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1)))), ca_);
  auto creds = std::move(ReloadingCredentials::Load(files_, Opts())).value();
  Pem later = ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1)), Validity{kNow + hours(2), kNow + hours(48)}));
  Write(files_.cert, later.cert);
  Write(files_.key, later.key);
  EXPECT_EQ(creds->Poll().code(), StatusCode::kFailedPrecondition);
  now_ = kNow + hours(3);
  EXPECT_TRUE(creds->Poll().ok());
  EXPECT_EQ(creds->generation(), 2u);
}

TEST_F(CredentialsTest, SameBytesAreNotARotation) {
  Pem pem = ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1))));
  WriteAll(pem, ca_);
  auto creds = std::move(ReloadingCredentials::Load(files_, Opts())).value();
  WriteAll(pem, ca_);  // new inodes and mtimes, same content
  EXPECT_TRUE(creds->Poll().ok());
  EXPECT_EQ(creds->generation(), 1u);
}

TEST_F(CredentialsTest, MissingFileMidRotationKeepsTheOldBundle) {
  WriteAll(ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1)))), ca_);
  auto creds = std::move(ReloadingCredentials::Load(files_, Opts())).value();
  std::filesystem::remove(files_.key);
  EXPECT_EQ(creds->Poll().code(), StatusCode::kNotFound);
  EXPECT_EQ(creds->generation(), 1u);
  EXPECT_FALSE(creds->Current()->key_pem.empty());
}

TEST_F(CredentialsTest, BackgroundPollerPicksUpARotation) {
  WriteAll(ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1)))), ca_);
  auto opts = Opts();
  opts.poll_interval = std::chrono::milliseconds(5);
  auto creds = std::move(ReloadingCredentials::Load(files_, opts)).value();
  creds->Start();
  Pem next = ToPem(Leaf(ca_, Identity::Node("c1", NodeId(1))));
  Write(files_.key, next.key);
  Write(files_.cert, next.cert);
  for (int i = 0; i < 2000 && creds->generation() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(creds->generation(), 2u);
  EXPECT_EQ(creds->Current()->cert_pem, next.cert);
  creds->Stop();
  creds->Stop();  // idempotent, and the destructor stops it again
}

}  // namespace
}  // namespace dispotify::tls
