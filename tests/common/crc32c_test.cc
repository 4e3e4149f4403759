#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace dispotify::crc32c {
namespace {

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(""), 0u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending;
  std::string descending;
  for (int i = 0; i < 32; ++i) {
    ascending += static_cast<char>(i);
    descending += static_cast<char>(31 - i);
  }
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, PortableGivesTheSameVectors) {
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(ExtendPortable(0, std::string(32, '\xFF').data(), 32), 0x62A8AB43u);
}

TEST(Crc32cTest, ExtendComposes) {
  const std::string a = "hello, ";
  const std::string b = "world, and some more bytes to cross the 8-byte stride";
  EXPECT_EQ(Extend(Value(a), b.data(), b.size()), Value(a + b));
  EXPECT_EQ(ExtendPortable(ExtendPortable(0, a.data(), a.size()), b.data(), b.size()), Value(a + b));
}

TEST(Crc32cTest, HardwareAndTableAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(42);
  std::string buf(4096 + 16, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t align = 0; align < 8; ++align) {
    for (size_t len = 0; len < 300; ++len) {
      ASSERT_EQ(Value(buf.data() + align, len), ExtendPortable(0, buf.data() + align, len))
          << "align " << align << " len " << len;
    }
    ASSERT_EQ(Value(buf.data() + align, 4096), ExtendPortable(0, buf.data() + align, 4096));
  }
  RecordProperty("hardware", IsHardwareAccelerated() ? "sse4.2" : "table");
}

}  // namespace
}  // namespace dispotify::crc32c
