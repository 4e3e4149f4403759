#include "node/auth/key_cache.h"

#include <utility>

#include "common/logging.h"

namespace dispotify::auth {

KeyCache::KeyCache(Options options, Fetcher fetcher, Now now)
    : options_(std::move(options)), fetcher_(std::move(fetcher)), now_(std::move(now)) {}

Result<std::shared_ptr<const KeySet>> KeyCache::Keys() {
  std::unique_lock<std::mutex> lock(mu_);
  const Clock::time_point now = now_();
  if (keys_ && now - fetched_at_ < options_.max_age) return keys_;
  // Only a caller with no keys at all waits for a fetch in flight: the others go on with the keys
  // they have, so an unknown-kid refetch or a slow issuer never holds up valid tokens.
  if (fetching_) {
    if (!keys_) WaitForFetchLocked(lock);
    return CurrentLocked();
  }
  // A periodic refresh reads the discovery document again too: the issuer may have moved its JWKS.
  if (RefetchAllowedLocked(now)) FetchLocked(lock, /*rediscover=*/true);
  return CurrentLocked();
}

Result<std::shared_ptr<const KeySet>> KeyCache::KeysAfterUnknownKid(
    const std::shared_ptr<const KeySet>& seen) {
  std::unique_lock<std::mutex> lock(mu_);
  if (fetching_) {
    WaitForFetchLocked(lock);
    return CurrentLocked();
  }
  if (keys_ && keys_ != seen) return keys_;
  if (RefetchAllowedLocked(now_())) FetchLocked(lock, /*rediscover=*/false);
  return CurrentLocked();
}

Result<Discovery> KeyCache::Discovered() {
  auto keys = Keys();
  if (!keys.ok()) return keys.status();
  std::lock_guard<std::mutex> lock(mu_);
  return discovery_;
}

JwtResult KeyCache::Validate(std::string_view token, const JwtPolicy& policy, int64_t now_s) {
  auto keys = Keys();
  if (!keys.ok()) return JwtFailure{JwtError::kKeysUnavailable, keys.status().message()};
  JwtResult result = ValidateJwt(token, **keys, policy, now_s);
  if (result.ok() || result.code() != JwtError::kUnknownKey) return result;
  auto again = KeysAfterUnknownKid(*keys);
  if (!again.ok() || *again == *keys) return result;
  return ValidateJwt(token, **again, policy, now_s);
}

bool KeyCache::RefetchAllowedLocked(Clock::time_point now) const {
  return !last_attempt_ || now - *last_attempt_ >= options_.min_refetch_interval;
}

void KeyCache::WaitForFetchLocked(std::unique_lock<std::mutex>& lock) {
  const uint64_t generation = fetch_generation_;
  fetched_.wait(lock, [&] { return fetch_generation_ != generation; });
}

void KeyCache::FetchLocked(std::unique_lock<std::mutex>& lock, bool rediscover) {
  fetching_ = true;
  last_attempt_ = now_();
  const Discovery known = rediscover ? Discovery{} : discovery_;
  lock.unlock();
  Result<Discovery> discovery = known.jwks_uri.empty() ? Discover() : Result<Discovery>(known);
  Result<KeySet> set = discovery.ok() ? FetchJwks(discovery->jwks_uri) : Result<KeySet>(discovery.status());
  lock.lock();
  fetching_ = false;
  ++fetch_generation_;
  if (set.ok()) {
    if (set->skipped() > 0) {
      DLOG_INFO << "JWKS of " << options_.issuer << ": " << set->keys().size() << " keys in use, "
                << set->skipped() << " skipped (not RS256/ES256 signing keys, or malformed)";
    }
    keys_ = std::make_shared<const KeySet>(std::move(set).value());
    fetched_at_ = now_();
    discovery_ = std::move(discovery).value();
  } else {
    last_error_ = set.status();
    DLOG_WARN << "fetching the keys of " << options_.issuer << " failed"
              << (keys_ ? " (the previous keys stay in use): " : ": ") << set.status().ToString();
  }
  fetched_.notify_all();
}

Result<std::shared_ptr<const KeySet>> KeyCache::CurrentLocked() const {
  if (keys_) return keys_;
  return last_error_;
}

namespace {

// The fetcher is where an HTTP client's exceptions would surface; they must not leave
// fetching_ set forever.
Result<std::string> Get(const KeyCache::Fetcher& fetcher, const std::string& url) {
  try {
    return fetcher(url);
  } catch (const std::exception& e) {
    return Status::Unavailable("GET " + url + ": " + e.what());
  }
}

}  // namespace

Result<Discovery> KeyCache::Discover() {
  const std::string url = DiscoveryUrl(options_.issuer);
  auto body = Get(fetcher_, url);
  if (!body.ok()) return body.status();
  return ParseDiscovery(*body, options_.issuer);
}

Result<KeySet> KeyCache::FetchJwks(const std::string& jwks_uri) {
  auto body = Get(fetcher_, jwks_uri);
  if (!body.ok()) return body.status();
  auto set = ParseJwks(*body);
  if (!set.ok()) return set.status();
  // An empty set would refuse every token; the previous one is the better bet.
  if (set->keys().empty()) {
    return Status::InvalidArgument("the JWKS at " + jwks_uri + " holds no usable key (" +
                                   std::to_string(set->skipped()) + " skipped)");
  }
  return set;
}

}  // namespace dispotify::auth
