#pragma once
// The MetadataStore conformance suite: one set of TEST_P cases that every metadata store must
// pass (node/catalog/metadata_store.h states the contract). A store's test file instantiates it:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreConformance,
//                            ::testing::Values(MetadataStoreTarget{"sqlite", open, reopen, {}}),
//                            MetadataStoreTargetName);
//
// Search contract pinned here (both stores): case- and accent-insensitive; word prefixes match;
// one typo is tolerated; ranking exact whole field > word prefix > substring > fuzzy, ties by
// file_id; the cursor pages through the same order as offsets; limit must be 1..100; an empty or
// blank query is kInvalidArgument, a query with nothing searchable in it (e.g. "!!!") is an OK,
// empty page; a malformed cursor is kInvalidArgument; a query over 256 bytes is kInvalidArgument;
// SQL/FTS syntax in a query is plain text.

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/catalog/metadata_store.h"
#include "tests/mocks/temp_dir.h"

namespace dispotify::catalog {

using StoreFactory = std::function<Result<std::unique_ptr<MetadataStore>>(const std::string& scratch_dir)>;

struct MetadataStoreTarget {
  std::string name;  // [A-Za-z0-9_]+, used in test names
  // A new, empty store whose data lives in (or is named after) `scratch_dir`, an existing,
  // empty directory unique to this store within the test.
  StoreFactory factory;
  // The same store again (after the previous instance was destroyed): same data.
  StoreFactory reopen;
  // Called at the end of the test for every scratch dir a factory was called on (may be empty):
  // e.g. drop the database the factory created.
  std::function<void(const std::string& scratch_dir)> cleanup;
};

// Test names and failure messages show the target by name.
inline void PrintTo(const MetadataStoreTarget& target, std::ostream* os) {
  *os << target.name;
}
std::string MetadataStoreTargetName(const ::testing::TestParamInfo<MetadataStoreTarget>& info);

class MetadataStoreConformance : public ::testing::TestWithParam<MetadataStoreTarget> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A fresh store on scratch dir `name` (created under the test's temp dir).
  std::unique_ptr<MetadataStore> OpenFresh(const std::string& name);
  // Reopens the store of scratch dir `name` (destroy the previous instance first).
  std::unique_ptr<MetadataStore> Reopen(const std::string& name);

  MetadataStore& store() { return *store_; }
  const mocks::TempDir& dir() const { return dir_; }

  mocks::TempDir dir_;
  std::vector<std::string> scratch_dirs_;
  std::unique_ptr<MetadataStore> store_;  // OpenFresh("main") in SetUp
};

}  // namespace dispotify::catalog
