#pragma once
// How much of the audit trail a cluster keeps. Pure decision logic: the leader reads the oldest
// stored entries and the head, asks TrimThrough how far the old ones may go, and proposes a
// catalog::TrimAuditCmd for that; the state machine moves the chain's checkpoint to the last
// dropped entry, so `dispotifyctl audit verify` still checks every entry that is left.

#include <cstdint>
#include <span>

#include "common/audit/entry.h"

namespace dispotify::audit {

struct Retention {
  int64_t max_age_ms = 0;    // entries older than this go; 0: no age limit
  uint64_t max_entries = 0;  // at most this many are kept; 0: no count limit
};

// `oldest`: stored entries from the oldest on, consecutive seqs, ascending (a prefix of the
// trail); `head_seq`: the newest entry's seq. Returns the seq through which entries may be
// dropped now, or 0 for none. Never the head itself (the trail keeps at least its newest entry),
// never past the last of `oldest` (their times are all this knows), and at most `max_batch`
// entries at once (one Raft command stays small).
uint64_t TrimThrough(const Retention& retention, std::span<const Entry> oldest, uint64_t head_seq,
                     int64_t now_ms, uint64_t max_batch);

}  // namespace dispotify::audit
