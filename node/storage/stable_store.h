#pragma once
// Term, vote and commit hint, written atomically and durably (see the .cc for the format).

#include <memory>
#include <string>

#include "common/file_system.h"
#include "common/status.h"
#include "node/consensus/types.h"

namespace dispotify::storage {

class StableStore {
 public:
  virtual ~StableStore() = default;
  // The last saved state; all zero on a fresh directory.
  virtual const consensus::HardState& Load() const = 0;
  // Atomic (a crash leaves the old or the new state, never a mix) and durable when it returns.
  virtual Status Save(const consensus::HardState& hs) = 0;
};

Result<std::unique_ptr<StableStore>> OpenStableStore(FileSystem& fs, const std::string& dir);

}  // namespace dispotify::storage
