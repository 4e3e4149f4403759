#pragma once
// Aggregation of refused requests for the audit trail. Every denial deserves a record, but one
// entry per refused request would let a flood of bad requests grow the replicated log without
// bound. So denials are counted per (client, reason) and written as at most one entry per key
// per interval, with the count in the entry's detail; and the number of distinct keys held per
// interval is capped: denials beyond the cap share one "other" entry. A flood therefore adds at
// most max_keys + 1 entries per interval, and the aggregator holds at most max_keys keys of
// bounded size.
//
// Time comes from the caller (`now_ms`), so tests need no clock and no sleeps. Not thread-safe:
// the node serialises calls (one aggregator per node, under its owner's lock).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/audit/entry.h"

namespace dispotify::audit {

// The client and reason of the bucket that collects denials past the cap.
inline constexpr std::string_view kOtherClient = "*other*";
inline constexpr std::string_view kOtherReason = "*other*";
// The actor written when one key's denials came from several actors.
inline constexpr std::string_view kSeveralActors = "*several*";

class DenialAggregator {
 public:
  static constexpr size_t kDefaultMaxKeys = 1000;

  explicit DenialAggregator(int64_t interval_ms, size_t max_keys = kDefaultMaxKeys);

  // Counts one refused request. `reason` is a short code ("unauthenticated", "forbidden",
  // "bad_signature"); it and `client` are sanitized and cut to their field limits, so callers
  // may pass request data. The first denial opens an interval.
  void Record(std::string_view client, std::string_view reason, int64_t now_ms,
              std::string_view actor = kAnonymous);

  // Once the open interval has lasted `interval_ms`, returns one entry per key (sorted by client,
  // then reason; the "other" bucket last) and starts afresh; before that, or with nothing
  // recorded, returns nothing. Entries are unchained (seq and hashes unset): AppendEntry links
  // them.
  std::vector<Entry> Flush(int64_t now_ms);

  // Ends the open interval now, whatever its age (at shutdown or leadership loss).
  std::vector<Entry> FlushAll(int64_t now_ms);

  size_t keys() const { return buckets_.size(); }

 private:
  struct Bucket {
    uint64_t count = 0;
    int64_t first_ms = 0;
    int64_t last_ms = 0;
    std::string actor;
  };
  static void Count(Bucket* bucket, int64_t now_ms, std::string_view actor);
  static Entry MakeEntry(const std::string& client, const std::string& reason, const Bucket& bucket,
                         int64_t start_ms, int64_t end_ms);

  int64_t interval_ms_;
  size_t max_keys_;
  std::optional<int64_t> window_start_ms_;
  // Key: client '\0' reason (neither holds a NUL after sanitizing).
  std::unordered_map<std::string, Bucket> buckets_;
  Bucket other_;  // the denials past max_keys_; unused while its count is 0
};

}  // namespace dispotify::audit
