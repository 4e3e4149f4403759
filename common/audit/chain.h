#pragma once
// The hash chain over audit entries (common/audit/entry.h). Entry n carries seq n and the hash of
// entry n-1 in prev_hash; its own hash covers both, so changing, dropping, inserting or
// reordering entries breaks a link that Verify finds.
//
// What a chain alone cannot show: someone who rewrites an entry *and* recomputes every later
// hash produces a chain that is consistent with itself. Only a head remembered elsewhere catches
// that (and a cut-off tail), which is why Verify takes an optional expected head: the head the
// replicated state machine reports, or one an operator noted earlier.
//
// Retention drops the oldest entries and keeps a Checkpoint: the head just before the oldest
// kept entry. Verification then starts from the checkpoint instead of the genesis head. The
// checkpoint must be stored apart from the entries (replicated with the command that drops them),
// never derived from the oldest kept entry's prev_hash: one derived so would let whoever can drop
// entries drop more than retention did, unseen.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/audit/entry.h"
#include "common/status.h"

namespace dispotify::audit {

// The last entry of a chain: its seq and hash. The empty chain's head is {0, all zeros}.
struct ChainHead {
  uint64_t seq = 0;
  Hash hash{};
  bool operator==(const ChainHead&) const = default;
};

// The head before the oldest entry still kept; {0, zeros} while nothing was dropped.
using Checkpoint = ChainHead;

// A head as text, "<seq> <64 lowercase hex digits>" (how the catalog stores the head and the
// checkpoint, and how the admin API and the CLI show them); ParseHead is its inverse (nullopt for
// anything else).
std::string FormatHead(const ChainHead& head);
std::optional<ChainHead> ParseHead(std::string_view text);

inline ChainHead HeadOf(const Entry& entry) {
  return {entry.seq, entry.hash};
}

// Links `entry` after `head`: sets seq (head.seq + 1) and prev_hash, then hash. Refuses an entry
// that Validate refuses (kInvalidArgument), and a head at the last seq (kFailedPrecondition).
Result<Entry> AppendEntry(const ChainHead& head, Entry entry);

// Why verification stopped. Values are stable: the CLI prints their names.
enum class Fault : uint8_t {
  kMalformed = 1,      // an entry that Validate refuses
  kModified = 2,       // its stored hash is not the hash of its fields
  kMissing = 3,        // a seq never appears: an entry was deleted
  kReordered = 4,      // the expected seq appears later: entries were moved
  kDuplicate = 5,      // a seq already seen appears again: an entry was inserted
  kBrokenLink = 6,     // prev_hash is not the previous entry's hash (or the checkpoint's):
                       // an entry was replaced or inserted with a hash of its own
  kTruncated = 7,      // the chain ends before the expected head
  kHeadMismatch = 8,   // the entry at the expected head's seq has another hash: the chain
                       // was rewritten with consistent hashes
  kBadCheckpoint = 9,  // the expected head is older than the checkpoint
};
std::string_view FaultName(Fault fault);

struct ChainFault {
  // The first seq that cannot be trusted: every entry before it verified.
  uint64_t seq = 0;
  Fault fault = Fault::kMalformed;
  bool operator==(const ChainFault&) const = default;
};

// Checks entries one at a time, for callers that page through a long chain (the CLI reading the
// admin API) and cannot hold it. Cannot tell kReordered from kMissing (it never sees what comes
// later): it reports kMissing, and Verify over a whole span refines it.
class ChainVerifier {
 public:
  explicit ChainVerifier(const Checkpoint& start, const std::optional<ChainHead>& expected = std::nullopt);

  // The fault at this entry, if any; after the first fault every call returns it again.
  std::optional<ChainFault> Add(const Entry& entry);
  // At the end of the entries: the first fault, including a chain that stops short of the
  // expected head.
  std::optional<ChainFault> Finish();

  // The head of the entries verified so far.
  const ChainHead& head() const { return head_; }

 private:
  std::optional<ChainFault> Fail(uint64_t seq, Fault fault);

  ChainHead head_;
  std::optional<ChainHead> expected_;
  std::optional<ChainFault> fault_;
};

struct Verification {
  ChainHead head;                   // the head of the longest verified prefix
  std::optional<ChainFault> fault;  // nullopt: the whole chain verified
};

// Verifies `entries` (in stored order) as the continuation of `start`, and, when `expected` is
// given, that the chain reaches it with the same hash.
Verification Check(std::span<const Entry> entries, const Checkpoint& start,
                   const std::optional<ChainHead>& expected = std::nullopt);

// Check() as a Result: the head on success, else kCorruption "audit chain broken at seq N:
// <fault>".
Result<ChainHead> Verify(std::span<const Entry> entries, const Checkpoint& start,
                         const std::optional<ChainHead>& expected = std::nullopt);

}  // namespace dispotify::audit
