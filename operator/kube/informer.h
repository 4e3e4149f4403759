#pragma once
// An informer: one resource type in one namespace (or all), optionally narrowed by selectors, kept
// in a local cache by list + watch, with a handler told of every change (as client-go's reflector
// and informer do).
//
// The loop, on its own thread:
//   list  -> replace the cache (the handler sees ADDED/MODIFIED for what is new or changed and
//            DELETED for what vanished meanwhile) -> synced;
//   watch from the list's resourceVersion, applying each event and advancing the resourceVersion
//            (BOOKMARK events advance it too, without a change);
//   the watch ends: normally (timeoutSeconds) -> watch again from the last resourceVersion;
//            410 Gone (kCompacted, a status or an ERROR event) -> list again;
//            any other error -> wait (capped exponential backoff) and watch again; a list that
//            fails waits the same way.
// Stop() ends the loop within a bounded time: the watch is cancelled, waits are interrupted.

#include <cpprest/json.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "operator/kube/client.h"

namespace dispotify::op::kube {

enum class ChangeType : uint8_t { kAdded, kModified, kDeleted };
std::string_view ChangeTypeName(ChangeType t);

struct InformerOptions {
  ResourceRef ref;  // the type and namespace ("" for all namespaces); name and subresource unused
  std::string label_selector;
  std::string field_selector;
  std::chrono::seconds watch_timeout{300};
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{30000};
};

class Informer {
 public:
  // Called on the informer's thread, never with the informer's lock held (it may call Get/List).
  // `object` is the new state, or the last known state for kDeleted. It must not call Stop().
  using Handler = std::function<void(ChangeType type, const web::json::value& object)>;

  Informer(KubeApi* api, InformerOptions options, Handler handler);
  ~Informer();  // stops
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();

  // The first list has been applied.
  bool HasSynced() const;
  // Waits until synced or `timeout`; false on a timeout.
  bool WaitForSync(std::chrono::milliseconds timeout) const;

  // A cached object by "ns/name" ("name" for cluster-scoped ones).
  std::optional<web::json::value> Get(const std::string& key) const;
  std::vector<web::json::value> List() const;
  std::string resource_version() const;
  // How many lists were made (the first and every relist); for tests and metrics.
  uint64_t lists() const;

 private:
  void Run(std::stop_token stop);
  // Replaces the cache with a list; returns the changes to report.
  std::vector<std::pair<ChangeType, web::json::value>> Replace(std::vector<web::json::value> items,
                                                               const std::string& rv);
  void Apply(const WatchEvent& event);
  // Sleeps `d` or until stopped; false when stopped.
  bool Sleep(std::stop_token stop, std::chrono::milliseconds d);

  KubeApi* const api_;
  const InformerOptions options_;
  const Handler handler_;

  mutable std::mutex mu_;
  mutable std::condition_variable_any cv_;
  std::map<std::string, web::json::value> cache_;
  std::string rv_;
  bool synced_ = false;
  uint64_t lists_ = 0;

  std::jthread thread_;
};

}  // namespace dispotify::op::kube
