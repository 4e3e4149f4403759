#include "operator/controller/work_queue.h"

#include <algorithm>

namespace dispotify::op::controller {

WorkQueue::WorkQueue(std::chrono::milliseconds base, std::chrono::milliseconds max)
    : base_(base), max_(max) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shut_down_) return;
  if (processing_.contains(key)) {
    dirty_.insert(key);
    return;
  }
  if (queued_.insert(key).second) queue_.push_back(key);
  cv_.notify_all();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  if (delay <= std::chrono::milliseconds::zero()) {
    AddLocked(key);
    return;
  }
  delayed_.emplace(Clock::now() + delay, key);
  cv_.notify_all();
}

std::chrono::milliseconds WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    const int n = failures_[key]++;
    delay = base_;
    for (int i = 0; i < n && delay < max_; ++i) delay *= 2;
    delay = std::min(delay, max_);
  }
  AddAfter(key, delay);
  return delay;
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

std::optional<std::string> WorkQueue::Get(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (true) {
    if (shut_down_ || stop.stop_requested()) return std::nullopt;
    // Delayed keys whose time has come join the queue.
    const auto now = Clock::now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      const std::string key = delayed_.begin()->second;
      delayed_.erase(delayed_.begin());
      AddLocked(key);
    }
    if (!queue_.empty()) {
      std::string key = queue_.front();
      queue_.pop_front();
      queued_.erase(key);
      processing_.insert(key);
      return key;
    }
    if (delayed_.empty()) {
      cv_.wait(lock, stop, [&] { return shut_down_ || !queue_.empty() || !delayed_.empty(); });
    } else {
      // Wakes early for an earlier delayed key added meanwhile.
      const auto until = delayed_.begin()->first;
      cv_.wait_until(lock, stop, until,
                     [&] { return shut_down_ || !queue_.empty() || delayed_.begin()->first < until; });
    }
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.erase(key) > 0) AddLocked(key);
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

size_t WorkQueue::Len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

int WorkQueue::Failures(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

}  // namespace dispotify::op::controller
