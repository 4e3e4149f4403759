#include "common/sha256.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>

namespace dispotify {
namespace {

// FIPS 180-2 appendix B and RFC 1321 appendix A.5 vectors.
constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbcSha[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlockInput[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr char kTwoBlockSha[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr char kMillionASha[] = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

TEST(Sha256Test, KnownVectorsOneShot) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha);
  EXPECT_EQ(Sha256Hex("abc"), kAbcSha);
  EXPECT_EQ(Sha256Hex(kTwoBlockInput), kTwoBlockSha);
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')), kMillionASha);
}

TEST(Sha256Test, RawDigestMatchesHex) {
  const Sha256::Digest d = Sha256Digest("abc");
  EXPECT_EQ(d[0], 0xba);
  EXPECT_EQ(d[31], 0xad);
  EXPECT_EQ(ToHex(d), kAbcSha);
}

TEST(Sha256Test, StreamingInUnevenPiecesMatchesOneShot) {
  const std::string million(1000000, 'a');
  Sha256 h;
  size_t pos = 0;
  size_t step = 1;
  while (pos < million.size()) {  // pieces of 1, 2, 4, ... bytes cross every block boundary
    const size_t n = std::min(step, million.size() - pos);
    h.Update(std::string_view(million).substr(pos, n));
    pos += n;
    step = step * 2 + 1;
  }
  EXPECT_EQ(h.FinalHex(), kMillionASha);
}

TEST(Sha256Test, FinalReinitialises) {
  Sha256 h;
  h.Update("ab");
  h.Update("");
  h.Update("c");
  EXPECT_EQ(ToHex(h.Final()), kAbcSha);
  EXPECT_EQ(h.FinalHex(), kEmptySha);  // nothing given since the last Final
  h.Update("garbage");
  h.Init();
  h.Update(kTwoBlockInput);
  EXPECT_EQ(h.FinalHex(), kTwoBlockSha);
}

TEST(Sha256Test, Movable) {
  Sha256 a;
  a.Update("ab");
  Sha256 b(std::move(a));
  b.Update("c");
  EXPECT_EQ(b.FinalHex(), kAbcSha);
}

TEST(Sha256Test, IsSha256Hex) {
  EXPECT_TRUE(IsSha256Hex(kAbcSha));
  EXPECT_TRUE(IsSha256Hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(std::string(kAbcSha).substr(1)));
  EXPECT_FALSE(IsSha256Hex(std::string(kAbcSha) + "0"));
  EXPECT_FALSE(IsSha256Hex("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

TEST(Md5Test, KnownVectors) {
  EXPECT_EQ(ToHex(Md5Digest("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(ToHex(Md5Digest("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(ToHex(Md5Digest("message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(ToHex(Md5Digest("The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6");
}

}  // namespace
}  // namespace dispotify
