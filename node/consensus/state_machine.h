#pragma once
// The replicated state machine behind the Raft log, as the driver loop (node/server/raft_node)
// sees it. The KV store (node/kv) implements it today; the catalog replaces it later behind the
// same interface. It lives beside the core so that state machines depend on consensus, not on the
// server that wires them.
//
// Guarantees the driver gives: Apply is called from one thread, once per committed entry, in
// log order with no gaps (every entry type, so that applied_index() follows the log; a state
// machine ignores the types it does not know). SaveSnapshot and Restore are called from that
// same thread, never concurrently with Apply.
// Guarantees a state machine must give: Apply is deterministic (same entries, same state, same
// results on every server); applied_index() is exactly the index of the last entry applied (or
// restored); a snapshot saved at applied_index() restores to the same state.

#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/status.h"
#include "node/consensus/types.h"

namespace dispotify::consensus {

// Where a state machine writes its snapshot (storage::SnapshotWriter is one).
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  virtual Status Write(std::string_view data) = 0;
};

// The outcome of one applied command, handed back to the client that proposed it. A command that
// the state machine rejects (a malformed one) is still applied (as a no-op) on every server, so
// the rejection is a result, never a reason to stop.
struct ApplyResult {
  Status status;
  std::string value;
  // The state machine could not record the entry at all (its store failed: disk full, I/O
  // error). The driver must stop the node: continuing would skip an entry.
  bool fatal = false;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  virtual ApplyResult Apply(const Entry& entry) = 0;
  // Writes the whole state, as of applied_index(), to `sink` (the caller commits it).
  virtual Status SaveSnapshot(SnapshotSink& sink) = 0;
  // Replaces the whole state with the snapshot payload at `path`.
  virtual Status Restore(const std::string& path) = 0;
  virtual LogIndex applied_index() const = 0;
};

}  // namespace dispotify::consensus
