#include "node/audit/retention.h"

#include <algorithm>

namespace dispotify::audit {

uint64_t TrimThrough(const Retention& retention, std::span<const Entry> oldest, uint64_t head_seq,
                     int64_t now_ms, uint64_t max_batch) {
  if (oldest.empty() || max_batch == 0 || head_seq <= oldest.front().seq) return 0;
  const uint64_t first = oldest.front().seq;
  uint64_t through = 0;
  if (retention.max_entries > 0) {
    const uint64_t stored = head_seq - first + 1;
    if (stored > retention.max_entries) through = first + (stored - retention.max_entries) - 1;
  }
  if (retention.max_age_ms > 0) {
    // Entries carry the recording node's clock, so times are only nearly ordered: stop at the
    // first young one rather than skip it, so no entry younger than the limit is ever dropped.
    const int64_t cutoff = now_ms - retention.max_age_ms;
    for (const Entry& e : oldest) {
      if (e.time_ms >= cutoff) break;
      through = std::max(through, e.seq);
    }
  }
  through = std::min({through, oldest.back().seq, head_seq - 1, first + max_batch - 1});
  return through >= first ? through : 0;
}

}  // namespace dispotify::audit
