#include "common/repr_digest.h"

#include <gtest/gtest.h>

namespace dispotify {
namespace {

// SHA-256("hello world")
constexpr std::string_view kHex = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
constexpr std::string_view kB64 = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";

Result<std::optional<std::string>> Parse(std::string_view field) {
  return Sha256FromReprDigest({field});
}

TEST(Base64Test, RoundTripsEveryLength) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x7f"})
    EXPECT_EQ(Base64Decode(Base64Encode(s)), s);
  EXPECT_EQ(Base64Decode("Zg"), "f");             // padding may be missing
  EXPECT_EQ(Base64Decode("Zh=="), std::nullopt);  // non-zero leftover bits
  EXPECT_EQ(Base64Decode("Z"), std::nullopt);
  EXPECT_EQ(Base64Decode("Zm9v!"), std::nullopt);
  EXPECT_EQ(Base64Decode("Zm-v"), std::nullopt);  // base64url is not accepted
}

TEST(ReprDigestTest, FormatsSha256AsAByteSequence) {
  const Sha256::Digest d = Sha256Digest("hello world");
  EXPECT_EQ(FormatReprDigest(d), "sha-256=:" + std::string(kB64) + ":");
  auto back = Parse(FormatReprDigest(d));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, std::string(kHex));
}

TEST(ReprDigestTest, FindsSha256AmongOtherAlgorithms) {
  const std::string sha = "sha-256=:" + std::string(kB64) + ":";
  for (const std::string& field : {
           sha,
           "sha-512=:pKvURIxJVi2CgRXROh/M6pJ/"
           "UrTVRZKX+LQ+QtqJI4vBNibkPcs43bCCSIkn7JBPtCBXRDmD6IWFF51QVRr+Yg==:, " +
               sha,
           sha + ",sha-512=:AAAA:",
           "unixsum=30637, " + sha + ";p=1;q=\"x\\\"y\", md5=?1",
           "x=(a b 1.5);k, " + sha,
           "  " + sha + "  ",
       }) {
    auto r = Parse(field);
    ASSERT_TRUE(r.ok()) << field << ": " << r.status().ToString();
    EXPECT_EQ(*r, std::string(kHex)) << field;
  }
}

TEST(ReprDigestTest, JoinsSeveralFieldLines) {
  auto r = Sha256FromReprDigest({"sha-512=:AAAA:", "", "sha-256=:" + std::string(kB64) + ":"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::string(kHex));
}

TEST(ReprDigestTest, AbsentSha256IsNotAnError) {
  for (std::string_view field : {"", "sha-512=:AAAA:", "md5=:AAAA:, unixsum=3"}) {
    auto r = Parse(field);
    ASSERT_TRUE(r.ok()) << field;
    EXPECT_EQ(*r, std::nullopt) << field;
  }
  auto none = Sha256FromReprDigest({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, std::nullopt);
}

TEST(ReprDigestTest, RefusesMalformedValues) {
  for (std::string_view field : {
           "sha-256=:AAAA:",                       // not 32 bytes
           "sha-256=b94d27b9934d3e08a52e52d7da7",  // a token, not a byte sequence
           "sha-256",                              // a Boolean
           "sha-256=:uU0nuZNNPgilLlLX2n2r!sSE7+N6U4DukIj3rOLvzek=:",
           "sha-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=",    // unterminated
           "SHA-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=:",   // keys are lowercase
           "sha-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=:,",  // trailing comma
           "sha-256=:uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=: x",
       }) {
    EXPECT_FALSE(Parse(field).ok()) << field;
  }
}

}  // namespace
}  // namespace dispotify
