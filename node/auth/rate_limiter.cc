#include "node/auth/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace dispotify::auth {

RateLimiter::RateLimiter(Options options) : options_(std::move(options)) {}

uint32_t RateLimiter::Take(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  return TakeLocked(key, true);
}

uint32_t RateLimiter::Peek(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  return TakeLocked(key, false);
}

size_t RateLimiter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

uint32_t RateLimiter::TakeLocked(std::string_view key, bool take) {
  const Clock::time_point now = options_.now();
  std::string k(key);
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_keys) EvictLocked(now);
    lru_.push_front(k);
    it = buckets_.emplace(std::move(k), Bucket{options_.burst, now, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  if (elapsed > 0) b.tokens = std::min(options_.burst, b.tokens + elapsed * options_.rate_per_s);
  b.updated = now;
  if (b.tokens >= 1) {
    if (take) b.tokens -= 1;
    return 0;
  }
  const double wait = (1 - b.tokens) / options_.rate_per_s;
  return static_cast<uint32_t>(std::max(1.0, std::ceil(wait)));
}

void RateLimiter::EvictLocked(Clock::time_point now) {
  // Full buckets first: forgetting them changes nothing.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (it->second.tokens + elapsed * options_.rate_per_s >= options_.burst) {
      lru_.erase(it->second.lru);
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  while (buckets_.size() >= options_.max_keys && !lru_.empty()) {
    buckets_.erase(lru_.back());
    lru_.pop_back();
  }
}

}  // namespace dispotify::auth
