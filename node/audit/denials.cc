#include "node/audit/denials.h"

#include <algorithm>
#include <utility>

namespace dispotify::audit {

DenialAggregator::DenialAggregator(int64_t interval_ms, size_t max_keys)
    : interval_ms_(std::max<int64_t>(interval_ms, 1)), max_keys_(max_keys) {}

void DenialAggregator::Count(Bucket* bucket, int64_t now_ms, std::string_view actor) {
  if (bucket->count == 0) {
    bucket->first_ms = now_ms;
    bucket->actor = Sanitize(actor.empty() ? kAnonymous : actor, kMaxActorBytes);
  } else if (bucket->actor != kSeveralActors && bucket->actor != Sanitize(actor, kMaxActorBytes)) {
    bucket->actor = kSeveralActors;
  }
  ++bucket->count;
  bucket->last_ms = std::max(bucket->last_ms, now_ms);
}

void DenialAggregator::Record(std::string_view client, std::string_view reason, int64_t now_ms,
                              std::string_view actor) {
  if (!window_start_ms_) window_start_ms_ = now_ms;
  std::string key = Sanitize(client, kMaxClientBytes);
  key.push_back('\0');
  key += Sanitize(reason, kMaxCodeBytes);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      Count(&other_, now_ms, actor);
      return;
    }
    it = buckets_.emplace(std::move(key), Bucket{}).first;
  }
  Count(&it->second, now_ms, actor);
}

Entry DenialAggregator::MakeEntry(const std::string& client, const std::string& reason, const Bucket& bucket,
                                  int64_t start_ms, int64_t end_ms) {
  Entry e;
  e.time_ms = end_ms;
  e.actor = bucket.actor;
  e.client = client;
  e.action = Action::kDenied;
  e.outcome = Outcome::kDenied;
  e.code = reason;
  e.detail = "count=" + std::to_string(bucket.count) + " first_ms=" + std::to_string(bucket.first_ms) +
             " last_ms=" + std::to_string(bucket.last_ms) + " interval_ms=" + std::to_string(start_ms) + "-" +
             std::to_string(end_ms);
  return e;
}

std::vector<Entry> DenialAggregator::Flush(int64_t now_ms) {
  if (!window_start_ms_ || now_ms - *window_start_ms_ < interval_ms_) return {};
  return FlushAll(now_ms);
}

std::vector<Entry> DenialAggregator::FlushAll(int64_t now_ms) {
  std::vector<Entry> out;
  if (!window_start_ms_) return out;
  const int64_t start = *window_start_ms_;
  std::vector<std::pair<std::string, Bucket>> sorted(std::make_move_iterator(buckets_.begin()),
                                                     std::make_move_iterator(buckets_.end()));
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out.reserve(sorted.size() + 1);
  for (const auto& [key, bucket] : sorted) {
    const size_t nul = key.find('\0');
    out.push_back(MakeEntry(key.substr(0, nul), key.substr(nul + 1), bucket, start, now_ms));
  }
  if (other_.count > 0) {
    out.push_back(MakeEntry(std::string(kOtherClient), std::string(kOtherReason), other_, start, now_ms));
  }
  buckets_.clear();
  other_ = Bucket{};
  window_start_ms_.reset();
  return out;
}

}  // namespace dispotify::audit
