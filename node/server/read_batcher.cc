#include "node/server/read_batcher.h"

#include <algorithm>

namespace dispotify::server {

ReadBatcher::ReadBatcher(Fetch fetch) : fetch_(std::move(fetch)) {}

Result<LogIndex> ReadBatcher::Await(Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  reads_.fetch_add(1, std::memory_order_relaxed);  // counted once it joined its round
  if (!next_) {
    next_ = std::make_shared<Round>();
    next_->deadline = deadline;
  } else {
    next_->deadline = std::max(next_->deadline, deadline);
  }
  const std::shared_ptr<Round> mine = next_;
  while (!mine->done) {
    if (!running_ && next_ == mine) {
      // Nobody runs this round yet and none is in flight: run it here.
      running_ = true;
      next_.reset();
      rounds_.fetch_add(1, std::memory_order_relaxed);
      const Clock::time_point round_deadline = mine->deadline;
      lock.unlock();
      Result<LogIndex> result = fetch_(round_deadline);
      lock.lock();
      mine->result = std::move(result);
      mine->done = true;
      running_ = false;
      cv_.notify_all();  // its readers, and the readers of the next round (one of them runs it)
      break;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && !mine->done) {
      // This reader gives up; its round still runs for the others (and may still run here:
      // the round's deadline is the latest of its readers').
      return Status::Timeout("no read round completed before the deadline");
    }
  }
  return mine->result;
}

}  // namespace dispotify::server
