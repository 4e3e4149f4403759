#pragma once
// The configured issuer's signing keys, kept for every request to use: fetched on first use
// (discovery document, then its jwks_uri), refreshed once they are older than max_age, and
// refetched when a token names a kid the set lacks, which is how an issuer's key rotation
// reaches us before max_age.
//
// Every fetch attempt, whatever its cause, is at most one per min_refetch_interval: a flood of
// tokens with made-up kids (or an issuer that is down) costs the issuer one request per
// interval, not one per token. The price: a key published within min_refetch_interval of the
// last fetch is seen only after the interval. A failed fetch keeps the previous keys in use.
//
// Thread-safe. The caller that finds a fetch due runs it on its own thread, without the lock.
// Callers that arrive meanwhile and need its outcome (no keys yet, or an unknown kid) wait for it
// and share it; the others go on with the keys they have.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "node/auth/jwks.h"
#include "node/auth/jwt.h"

namespace dispotify::auth {

class KeyCache {
 public:
  using Clock = std::chrono::steady_clock;
  // GET `url`: the body of a 200, or why not. Must return in bounded time (its own timeout).
  using Fetcher = std::function<Result<std::string>(const std::string& url)>;
  using Now = std::function<Clock::time_point()>;

  struct Options {
    std::string issuer;  // exactly as in the tokens' iss and the discovery document
    std::chrono::seconds max_age{3600};
    std::chrono::seconds min_refetch_interval{30};
  };

  KeyCache(Options options, Fetcher fetcher, Now now = Clock::now);

  // The current keys, after fetching them if there are none yet or they are older than max_age
  // (and no attempt was made within min_refetch_interval). Fails only while no fetch has ever
  // succeeded.
  Result<std::shared_ptr<const KeySet>> Keys();

  // The keys once more, for a token whose kid was not in `seen`: a newer set if another caller
  // already fetched one, else the result of a new fetch, else (rate limited) the current set.
  Result<std::shared_ptr<const KeySet>> KeysAfterUnknownKid(const std::shared_ptr<const KeySet>& seen);

  // The discovery document as last read (for the browser login's endpoints), after fetching the
  // keys as Keys() does if they were never fetched. Fails while no fetch has ever succeeded.
  Result<Discovery> Discovered();

  // ValidateJwt with these keys, retried once with a refetched set on kUnknownKey.
  // kKeysUnavailable when no keys could be had. `now_s` is wall-clock Unix time.
  JwtResult Validate(std::string_view token, const JwtPolicy& policy, int64_t now_s);

 private:
  // All three must hold the lock (`lock` owns mu_); FetchLocked releases it while fetching.
  bool RefetchAllowedLocked(Clock::time_point now) const;
  void WaitForFetchLocked(std::unique_lock<std::mutex>& lock);
  void FetchLocked(std::unique_lock<std::mutex>& lock, bool rediscover);
  Result<std::shared_ptr<const KeySet>> CurrentLocked() const;

  // Must not hold the lock: the network calls.
  Result<Discovery> Discover();
  Result<KeySet> FetchJwks(const std::string& jwks_uri);

  const Options options_;
  const Fetcher fetcher_;
  const Now now_;

  std::mutex mu_;
  std::condition_variable fetched_;
  bool fetching_ = false;
  uint64_t fetch_generation_ = 0;  // completed fetch attempts; waiters watch it change
  std::optional<Clock::time_point> last_attempt_;
  Clock::time_point fetched_at_;  // of keys_
  Discovery discovery_;           // the last good discovery document (jwks_uri: of keys_)
  std::shared_ptr<const KeySet> keys_;
  Status last_error_ = Status::Unavailable("the issuer's keys were never fetched");
};

}  // namespace dispotify::auth
