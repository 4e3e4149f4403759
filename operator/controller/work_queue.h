#pragma once
// The controller's work queue, keyed by "namespace/name", as client-go's rate-limited queue:
//   - a key is queued at most once however often it is added;
//   - a key being processed is never handed out again until Done; an Add meanwhile marks it to be
//     queued again at Done, so a change seen during a pass is never lost;
//   - AddAfter queues it later (the periodic look at nodes, whose changes make no Kubernetes event);
//   - AddRateLimited queues it after a per-key delay that doubles on each call (a failing pass),
//     from `base` up to `max`, until Forget.
// Thread-safe.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

namespace dispotify::op::controller {

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit WorkQueue(std::chrono::milliseconds base = std::chrono::milliseconds(200),
                     std::chrono::milliseconds max = std::chrono::seconds(30));

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  // Returns the delay chosen.
  std::chrono::milliseconds AddRateLimited(const std::string& key);
  // The key's passes succeed again: its next AddRateLimited starts from `base`.
  void Forget(const std::string& key);

  // The next key to process; waits for one. nullopt once shut down or `stop` is requested.
  std::optional<std::string> Get(std::stop_token stop);
  void Done(const std::string& key);
  void ShutDown();

  size_t Len() const;
  int Failures(const std::string& key) const;

 private:
  void AddLocked(const std::string& key);

  const std::chrono::milliseconds base_, max_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;      // in queue_
  std::set<std::string> processing_;  // handed out, not Done
  std::set<std::string> dirty_;       // added while processing
  std::multimap<Clock::time_point, std::string> delayed_;
  std::map<std::string, int> failures_;
  bool shut_down_ = false;
};

}  // namespace dispotify::op::controller
