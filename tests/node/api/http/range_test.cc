#include "node/api/http/range.h"

#include <gtest/gtest.h>

#include <string>

namespace dispotify::api::http {
namespace {

struct RangeCase {
  std::string header;
  uint64_t length;
  RangeKind kind;
  uint64_t first = 0;
  uint64_t last = 0;
};

class RangeTableTest : public ::testing::TestWithParam<RangeCase> {};

TEST_P(RangeTableTest, Parses) {
  const RangeCase& c = GetParam();
  RangeResult r = ParseRange(c.header, c.length);
  EXPECT_EQ(r.kind, c.kind) << "'" << c.header << "' against " << c.length;
  if (c.kind == RangeKind::kSatisfiable && r.kind == RangeKind::kSatisfiable) {
    EXPECT_EQ(r.range.first, c.first) << c.header;
    EXPECT_EQ(r.range.last, c.last) << c.header;
  }
}

const uint64_t kMax = UINT64_MAX;

INSTANTIATE_TEST_SUITE_P(
    Table, RangeTableTest,
    ::testing::Values(
        // Satisfiable.
        RangeCase{"bytes=0-99", 1000, RangeKind::kSatisfiable, 0, 99},
        RangeCase{"bytes=0-0", 1000, RangeKind::kSatisfiable, 0, 0},
        RangeCase{"bytes=500-", 1000, RangeKind::kSatisfiable, 500, 999},
        RangeCase{"bytes=999-", 1000, RangeKind::kSatisfiable, 999, 999},
        RangeCase{"bytes=900-5000", 1000, RangeKind::kSatisfiable, 900, 999},  // last clipped
        RangeCase{"bytes=-100", 1000, RangeKind::kSatisfiable, 900, 999},
        RangeCase{"bytes=-1", 1000, RangeKind::kSatisfiable, 999, 999},
        RangeCase{"bytes=-5000", 1000, RangeKind::kSatisfiable, 0, 999},  // suffix longer than the file
        RangeCase{"Bytes=1-2", 10, RangeKind::kSatisfiable, 1, 2},        // unit is case-insensitive
        RangeCase{" bytes = 1-2 ", 10, RangeKind::kSatisfiable, 1, 2},
        RangeCase{"bytes=1-2,", 10, RangeKind::kSatisfiable, 1, 2},  // empty list element
        RangeCase{"bytes=0-99999999999999999999999", 10, RangeKind::kSatisfiable, 0, 9},  // last saturates
        RangeCase{"bytes=-99999999999999999999999", 10, RangeKind::kSatisfiable, 0, 9},   // suffix saturates
        RangeCase{"bytes=0-18446744073709551615", kMax, RangeKind::kSatisfiable, 0, kMax - 1},
        RangeCase{"bytes=18446744073709551614-", kMax, RangeKind::kSatisfiable, kMax - 1, kMax - 1},
        // Unsatisfiable: 416.
        RangeCase{"bytes=1000-", 1000, RangeKind::kUnsatisfiable},
        RangeCase{"bytes=1000-2000", 1000, RangeKind::kUnsatisfiable},
        RangeCase{"bytes=-0", 1000, RangeKind::kUnsatisfiable},
        RangeCase{"bytes=0-", 0, RangeKind::kUnsatisfiable},
        RangeCase{"bytes=-5", 0, RangeKind::kUnsatisfiable},
        RangeCase{"bytes=99999999999999999999999-", 10, RangeKind::kUnsatisfiable},  // first saturates
        RangeCase{"bytes=18446744073709551615-", kMax, RangeKind::kUnsatisfiable},
        // Malformed or unsupported: ignored (full 200).
        RangeCase{"", 1000, RangeKind::kNone}, RangeCase{"bytes", 1000, RangeKind::kNone},
        RangeCase{"bytes=", 1000, RangeKind::kNone}, RangeCase{"bytes=-", 1000, RangeKind::kNone},
        RangeCase{"bytes=abc", 1000, RangeKind::kNone},
        RangeCase{"bytes=5-1", 1000, RangeKind::kNone},  // last < first
        RangeCase{"bytes=+1-2", 1000, RangeKind::kNone}, RangeCase{"bytes=1--2", 1000, RangeKind::kNone},
        RangeCase{"bytes=1-2x", 1000, RangeKind::kNone}, RangeCase{"bytes=0x10-", 1000, RangeKind::kNone},
        RangeCase{"bytes=1 -2", 1000, RangeKind::kNone},
        RangeCase{"items=0-1", 1000, RangeKind::kNone},      // other unit
        RangeCase{"bytes=0-1,5-6", 1000, RangeKind::kNone},  // several ranges: not supported
        RangeCase{"bytes=2000-3000,5000-", 1000, RangeKind::kNone},
        RangeCase{"bytes=,", 1000, RangeKind::kNone}));

TEST(RangeTest, HeaderValues) {
  EXPECT_EQ(ContentRangeHeader({0, 99}, 1000), "bytes 0-99/1000");
  EXPECT_EQ(UnsatisfiedContentRange(1000), "bytes */1000");
  EXPECT_EQ((ByteRange{10, 19}.length()), 10u);
}

}  // namespace
}  // namespace dispotify::api::http
