#include "node/audit/audit_log.h"

#include <algorithm>
#include <utility>

#include "common/logging.h"

namespace dispotify::audit {

AuditLog::AuditLog(Options options, Submit submit)
    : options_(std::move(options)), submit_(std::move(submit)), denials_(options_.denial_interval_ms) {}

AuditLog::~AuditLog() {
  Stop();
}

void AuditLog::Start() {
  std::lock_guard<std::mutex> lock(thread_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void AuditLog::Stop() {
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Entry& e : denials_.FlushAll(options_.now_ms())) pending_.push_back(std::move(e));
  }
  if (Status s = Flush(); !s.ok()) DLOG_WARN << "audit: entries not written at shutdown: " << s.message();
}

void AuditLog::Record(Entry entry) {
  if (entry.time_ms == 0) entry.time_ms = options_.now_ms();
  entry.actor = Sanitize(entry.actor.empty() ? kAnonymous : std::string_view(entry.actor), kMaxActorBytes);
  if (entry.actor.empty()) entry.actor = std::string(kAnonymous);
  entry.client = Sanitize(entry.client, kMaxClientBytes);
  entry.target = Sanitize(entry.target, kMaxTargetBytes);
  entry.code = Sanitize(entry.code, kMaxCodeBytes);
  entry.request_id = Sanitize(entry.request_id, kMaxRequestIdBytes);
  entry.detail = Sanitize(entry.detail, kMaxDetailBytes);
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.size() >= options_.max_pending) {
    ++dropped_;
    return;
  }
  pending_.push_back(std::move(entry));
}

void AuditLog::Record(Action action, Outcome outcome, std::string_view actor, std::string_view client,
                      std::string_view target, std::string_view code, std::string_view detail,
                      std::string_view request_id) {
  Entry e;
  e.action = action;
  e.outcome = outcome;
  e.actor = std::string(actor);
  e.client = std::string(client);
  e.target = std::string(target);
  e.code = std::string(code);
  e.detail = std::string(detail);
  e.request_id = std::string(request_id);
  Record(std::move(e));
}

void AuditLog::Deny(std::string_view client, std::string_view reason, std::string_view actor) {
  std::lock_guard<std::mutex> lock(mu_);
  denials_.Record(client, reason, options_.now_ms(), actor.empty() ? kAnonymous : actor);
}

Status AuditLog::Flush() {
  std::lock_guard<std::mutex> order(flush_mu_);
  std::vector<Entry> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Entry& e : denials_.Flush(options_.now_ms())) pending_.push_back(std::move(e));
    batch.swap(pending_);
  }
  if (batch.empty()) return Status::Ok();
  size_t done = 0;
  Status result;
  while (done < batch.size()) {
    const size_t n = std::min<size_t>(batch.size() - done, 1000);  // catalog::kMaxAuditBatch
    std::vector<std::string> encoded;
    encoded.reserve(n);
    for (size_t i = done; i < done + n; ++i) {
      auto bytes = Encode(batch[i]);
      if (bytes.ok()) {
        encoded.push_back(std::move(bytes).value());
      } else {
        DLOG_ERROR << "audit: an entry does not encode (dropped): " << bytes.status().message();
      }
    }
    result = encoded.empty() ? Status::Ok() : submit_(encoded);
    if (!result.ok()) break;
    done += n;
  }
  std::lock_guard<std::mutex> lock(mu_);
  submitted_ += done;
  if (done < batch.size()) {
    // Put the rest back in front of what arrived meanwhile; keep the oldest within the bound.
    std::vector<Entry> rest(std::make_move_iterator(batch.begin() + static_cast<ptrdiff_t>(done)),
                            std::make_move_iterator(batch.end()));
    for (Entry& e : pending_) rest.push_back(std::move(e));
    if (rest.size() > options_.max_pending) {
      dropped_ += rest.size() - options_.max_pending;
      rest.resize(options_.max_pending);
    }
    pending_.swap(rest);
  }
  return result;
}

void AuditLog::Run() {
  bool warned = false;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(thread_mu_);
      cv_.wait_for(lock, options_.flush_interval, [this] { return stop_; });
      if (stop_) return;
    }
    Status s = Flush();
    if (!s.ok() && !warned) {
      DLOG_WARN << "audit: entries not written yet (kept, retried): " << s.message();
      warned = true;
    } else if (s.ok()) {
      warned = false;
    }
  }
}

uint64_t AuditLog::submitted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return submitted_;
}

uint64_t AuditLog::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

}  // namespace dispotify::audit
