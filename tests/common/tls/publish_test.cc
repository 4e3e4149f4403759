#include "common/tls/publish.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace dispotify::tls {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CredentialBundle Fake(uint64_t generation) {
  CredentialBundle b;
  b.cert_pem = "cert " + std::to_string(generation);
  b.key_pem = "key " + std::to_string(generation);
  b.ca_pem = "ca " + std::to_string(generation);
  b.generation = generation;
  return b;
}

class PublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "publish_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/tls";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_, dir_;
};

TEST_F(PublishTest, CurrentAlwaysNamesOneWholeGeneration) {
  PublishedPaths p = PublishedFiles(dir_);
  ASSERT_TRUE(PublishBundle(Fake(1), dir_).ok());
  EXPECT_EQ(Read(p.cert), "cert 1");
  EXPECT_EQ(Read(p.key), "key 1");
  EXPECT_EQ(Read(p.ca), "ca 1");
  struct stat st {};
  ASSERT_EQ(::stat(p.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  const std::string first = std::filesystem::read_symlink(dir_ + "/current");
  EXPECT_TRUE(first.starts_with("gen-1-")) << first;
  ASSERT_TRUE(PublishBundle(Fake(2), dir_).ok());
  const std::string second = std::filesystem::read_symlink(dir_ + "/current");
  ASSERT_TRUE(PublishBundle(Fake(3), dir_).ok());
  EXPECT_EQ(Read(p.cert), "cert 3");
  EXPECT_EQ(Read(p.key), "key 3");
  EXPECT_TRUE(std::filesystem::read_symlink(dir_ + "/current").string().starts_with("gen-3-"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + second));  // a reader may still be in it
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/" + first));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/current.tmp"));
}

// After a restart generations count from 1 again: the old run's directories must neither be
// rewritten under a reader nor linger.
TEST_F(PublishTest, ARestartedProcessStartsOver) {
  for (uint64_t g = 1; g <= 4; ++g) ASSERT_TRUE(PublishBundle(Fake(g), dir_).ok());
  CredentialBundle restarted = Fake(1);
  restarted.cert_pem = "cert 1 after restart";
  ASSERT_TRUE(PublishBundle(restarted, dir_).ok());
  EXPECT_EQ(Read(PublishedFiles(dir_).cert), "cert 1 after restart");
  size_t gens = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    gens += e.path().filename().string().starts_with("gen-");
  EXPECT_EQ(gens, 2u);  // the new one and the one it replaced
  EXPECT_EQ(PublishBundle(Fake(0), dir_).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dispotify::tls
