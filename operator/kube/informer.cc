#include "operator/kube/informer.h"

#include <algorithm>

#include "common/logging.h"

namespace dispotify::op::kube {

namespace json = web::json;
using Clock = std::chrono::steady_clock;

std::string_view ChangeTypeName(ChangeType t) {
  switch (t) {
    case ChangeType::kAdded: return "added";
    case ChangeType::kModified: return "modified";
    case ChangeType::kDeleted: return "deleted";
  }
  return "?";
}

Informer::Informer(KubeApi* api, InformerOptions options, Handler handler)
    : api_(api), options_(std::move(options)), handler_(std::move(handler)) {}

Informer::~Informer() {
  Stop();
}

void Informer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void Informer::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  thread_.join();
}

bool Informer::HasSynced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

bool Informer::WaitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_; });
}

std::optional<json::value> Informer::Get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<json::value> Informer::List() const {
  std::lock_guard lock(mu_);
  std::vector<json::value> out;
  out.reserve(cache_.size());
  for (const auto& [key, obj] : cache_) out.push_back(obj);
  return out;
}

std::string Informer::resource_version() const {
  std::lock_guard lock(mu_);
  return rv_;
}

uint64_t Informer::lists() const {
  std::lock_guard lock(mu_);
  return lists_;
}

bool Informer::Sleep(std::stop_token stop, std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

std::vector<std::pair<ChangeType, json::value>> Informer::Replace(std::vector<json::value> items,
                                                                  const std::string& rv) {
  std::vector<std::pair<ChangeType, json::value>> changes;
  std::map<std::string, json::value> fresh;
  for (auto& item : items) fresh.emplace(ObjectKey(item), std::move(item));
  std::lock_guard lock(mu_);
  for (const auto& [key, obj] : fresh) {
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      changes.emplace_back(ChangeType::kAdded, obj);
    } else if (MetaString(it->second, "resourceVersion") != MetaString(obj, "resourceVersion")) {
      changes.emplace_back(ChangeType::kModified, obj);
    }
  }
  for (const auto& [key, obj] : cache_) {
    if (!fresh.contains(key)) changes.emplace_back(ChangeType::kDeleted, obj);
  }
  cache_ = std::move(fresh);
  rv_ = rv;
  synced_ = true;
  ++lists_;
  cv_.notify_all();
  return changes;
}

void Informer::Apply(const WatchEvent& event) {
  const std::string rv = MetaString(event.object, "resourceVersion");
  std::optional<ChangeType> change;
  {
    std::lock_guard lock(mu_);
    switch (event.type) {
      case WatchEventType::kAdded:
      case WatchEventType::kModified: {
        const std::string key = ObjectKey(event.object);
        change = cache_.contains(key) ? ChangeType::kModified : ChangeType::kAdded;
        cache_[key] = event.object;
        break;
      }
      case WatchEventType::kDeleted:
        cache_.erase(ObjectKey(event.object));
        change = ChangeType::kDeleted;
        break;
      case WatchEventType::kBookmark: break;
      case WatchEventType::kError: return;  // Watch returns its status
    }
    if (!rv.empty()) rv_ = rv;
  }
  if (change) handler_(*change, event.object);
}

void Informer::Run(std::stop_token stop) {
  const std::string what = Describe(options_.ref);
  bool need_list = true;
  auto backoff = options_.backoff_initial;
  auto failed = [&](const Status& s, std::string_view doing) {
    DLOG_WARN << "informer " << what << ": " << doing << " failed (" << s.ToString() << "); retrying in "
              << backoff.count() << " ms";
    const bool go_on = Sleep(stop, backoff);
    backoff = std::min(backoff * 2, options_.backoff_max);
    return go_on;
  };
  while (!stop.stop_requested()) {
    if (need_list) {
      ListOptions lo;
      lo.label_selector = options_.label_selector;
      lo.field_selector = options_.field_selector;
      auto list = api_->List(options_.ref, lo);
      if (!list.ok()) {
        if (!failed(list.status(), "list")) return;
        continue;
      }
      for (const auto& [type, obj] : Replace(std::move(list->items), list->resource_version)) {
        handler_(type, obj);
      }
      need_list = false;
      backoff = options_.backoff_initial;
    }
    WatchOptions wo;
    wo.label_selector = options_.label_selector;
    wo.field_selector = options_.field_selector;
    wo.resource_version = resource_version();
    wo.timeout = options_.watch_timeout;
    wo.allow_bookmarks = true;
    const auto started = Clock::now();
    bool got_events = false;
    const Status s = api_->Watch(
        options_.ref, wo,
        [&](const WatchEvent& e) {
          got_events = true;
          Apply(e);
        },
        stop);
    if (stop.stop_requested()) return;
    if (IsGone(s)) {
      DLOG_INFO << "informer " << what << ": resourceVersion " << wo.resource_version
                << " is too old; listing again";
      need_list = true;
      // Relisting is right, but not in a tight loop with a server that answers 410 at once.
      if (!got_events && Clock::now() - started < std::chrono::seconds(1) && !Sleep(stop, backoff)) return;
      continue;
    }
    if (!s.ok()) {
      if (!failed(s, "watch")) return;
      continue;
    }
    // A watch that ended at once with nothing in it: do not spin on a server that keeps doing that.
    if (!got_events && Clock::now() - started < std::chrono::seconds(1)) {
      if (!failed(Status::Unavailable("the watch ended at once"), "watch")) return;
      continue;
    }
    backoff = options_.backoff_initial;
  }
}

}  // namespace dispotify::op::kube
