// The pure parts of the upload path: the write quorum (file ids: tests/common/file_id_test.cc).
#include "node/replication/file_service.h"

#include <gtest/gtest.h>

namespace dispotify::replication {
namespace {

TEST(WriteQuorum, IsAMajorityOfTheCopies) {
  EXPECT_EQ(WriteQuorum(1), 1u);
  EXPECT_EQ(WriteQuorum(2), 2u);
  EXPECT_EQ(WriteQuorum(3), 2u);
  EXPECT_EQ(WriteQuorum(4), 3u);
  EXPECT_EQ(WriteQuorum(5), 3u);
}

}  // namespace
}  // namespace dispotify::replication
