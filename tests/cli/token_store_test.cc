#include "cli/dispotifyctl/token_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/mocks/temp_dir.h"

namespace dispotify::cli {
namespace {

TEST(TokenStoreTest, PathPrecedence) {
  EXPECT_EQ(TokenFilePath("/x/t", "/xdg", "/home/u"), "/x/t");
  EXPECT_EQ(TokenFilePath("", "/xdg", "/home/u"), "/xdg/dispotify/token");
  EXPECT_EQ(TokenFilePath("", "", "/home/u"), "/home/u/.config/dispotify/token");
  EXPECT_EQ(TokenFilePath("", "", ""), "");
}

TEST(TokenStoreTest, StoredPrivatelyReadBackAndForgotten) {
  mocks::TempDir dir;
  const std::string path = dir.path() + "/a/b/token";
  EXPECT_FALSE(LoadToken(path)->has_value());
  ASSERT_TRUE(StoreToken(path, "dsp_secret").ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir.path() + "/a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(LoadToken(path)->value_or(""), "dsp_secret");
  ASSERT_TRUE(StoreToken(path, "dsp_newer").ok());
  EXPECT_EQ(LoadToken(path)->value_or(""), "dsp_newer");
  ::chmod(path.c_str(), 0640);
  EXPECT_EQ(LoadToken(path).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ForgetToken(path).ok());
  ASSERT_TRUE(ForgetToken(path).ok());
  EXPECT_FALSE(LoadToken(path)->has_value());
  EXPECT_EQ(StoreToken("", "x").code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace dispotify::cli
