#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace dispotify {
namespace {

TEST(Base64Url, EncodesWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(Base64Encode("\xfb\xff\xbf"), "+/+/");
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::string s;
  for (int i = 0; i < 70; ++i) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(s)), s);
    s += static_cast<char>(i * 37);
  }
}

TEST(Base64Url, RefusesWhatNoEncoderProduces) {
  EXPECT_EQ(Base64UrlDecode("-_-_"), "\xfb\xff\xbf");
  EXPECT_EQ(Base64UrlDecode("Zg=="), std::nullopt);  // padding
  EXPECT_EQ(Base64UrlDecode("Zm8="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("+/+/"), std::nullopt);  // standard alphabet
  EXPECT_EQ(Base64UrlDecode("Zm 9v"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Z"), std::nullopt);   // impossible length
  EXPECT_EQ(Base64UrlDecode("Zh"), std::nullopt);  // non-zero leftover bits
}

}  // namespace
}  // namespace dispotify
