#include "operator/kube/events.h"

#include <cstdio>

#include "common/logging.h"

namespace dispotify::op::kube {

namespace json = web::json;

namespace {

constexpr auto kAggregationWindow = std::chrono::minutes(10);

std::string Str(const json::value& o, const char* key) {
  if (!o.is_object() || !o.has_field(key) || !o.at(key).is_string()) return "";
  return o.at(key).as_string();
}

std::string EventNamespace(const json::value& involved) {
  const std::string ns = MetaString(involved, "namespace");
  return ns.empty() ? "default" : ns;
}

}  // namespace

EventRecorder::EventRecorder(KubeApi* api, std::string instance)
    : api_(api), instance_(std::move(instance)) {}

json::value EventRecorder::BuildEvent(const json::value& involved, EventType type, std::string_view reason,
                                      std::string_view message, const std::string& instance,
                                      std::chrono::system_clock::time_point now) {
  json::value ref = json::value::object();
  for (const char* key : {"kind", "apiVersion"}) {
    if (const std::string v = Str(involved, key); !v.empty()) ref[key] = json::value::string(v);
  }
  for (const char* key : {"name", "namespace", "uid", "resourceVersion"}) {
    if (const std::string v = MetaString(involved, key); !v.empty()) ref[key] = json::value::string(v);
  }
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".%llx", static_cast<unsigned long long>(nanos));

  json::value e = json::value::object();
  e["apiVersion"] = json::value::string("v1");
  e["kind"] = json::value::string("Event");
  json::value meta = json::value::object();
  meta["name"] = json::value::string(MetaString(involved, "name") + suffix);
  meta["namespace"] = json::value::string(EventNamespace(involved));
  e["metadata"] = meta;
  e["involvedObject"] = ref;
  e["type"] = json::value::string(type == EventType::kWarning ? "Warning" : "Normal");
  e["reason"] = json::value::string(std::string(reason));
  // The API server refuses messages over 1 KiB.
  e["message"] = json::value::string(std::string(message.substr(0, 1024)));
  json::value source = json::value::object();
  source["component"] = json::value::string(std::string(kReportingController));
  if (!instance.empty()) source["host"] = json::value::string(instance);
  e["source"] = source;
  e["reportingComponent"] = json::value::string(std::string(kReportingController));
  e["reportingInstance"] = json::value::string(instance);
  const std::string ts = FormatTime(now, /*micros=*/false);
  e["firstTimestamp"] = json::value::string(ts);
  e["lastTimestamp"] = json::value::string(ts);
  e["count"] = json::value::number(1);
  return e;
}

void EventRecorder::Record(const json::value& involved, EventType type, std::string_view reason,
                           std::string_view message) {
  const std::string key = MetaString(involved, "uid") + "\n" + ObjectKey(involved) + "\n" +
                          (type == EventType::kWarning ? "W" : "N") + "\n" + std::string(reason) + "\n" +
                          std::string(message);
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  if (auto it = seen_.find(key); it != seen_.end() && now - it->second.last < kAggregationWindow) {
    Seen seen = it->second;
    lock.unlock();
    json::value patch = json::value::object();
    patch["count"] = json::value::number(seen.count + 1);
    patch["lastTimestamp"] = json::value::string(FormatTime(std::chrono::system_clock::now(), false));
    auto r = api_->MergePatch({Events(), seen.ns, seen.name, ""}, patch);
    if (r.ok()) {
      lock.lock();
      if (auto again = seen_.find(key); again != seen_.end()) {
        again->second.count = seen.count + 1;
        again->second.last = now;
      }
      return;
    }
    if (!IsNotFound(r.status())) {
      DLOG_WARN << "event " << reason << " on " << ObjectKey(involved)
                << " not recorded: " << r.status().ToString();
      return;
    }
    lock.lock();  // the old event expired: create a new one
  }
  lock.unlock();

  const json::value event =
      BuildEvent(involved, type, reason, message, instance_, std::chrono::system_clock::now());
  const std::string ns = EventNamespace(involved);
  auto r = api_->Create({Events(), ns, "", ""}, event);
  if (!r.ok()) {
    DLOG_WARN << "event " << reason << " on " << ObjectKey(involved)
              << " not recorded: " << r.status().ToString();
    return;
  }
  lock.lock();
  if (!seen_.contains(key)) {
    order_.push_back(key);
    if (order_.size() > kMaxSeen) {
      seen_.erase(order_.front());
      order_.pop_front();
    }
  }
  seen_[key] = Seen{ns, MetaString(*r, "name"), 1, now};
}

}  // namespace dispotify::op::kube
