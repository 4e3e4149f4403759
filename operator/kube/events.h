#pragma once
// Kubernetes Events (core/v1) about the objects the operator manages, for `kubectl describe` and
// `kubectl get events`: every significant action and every refusal.
//
// Recording never fails the caller: an error is logged and dropped (as client-go's recorder does).
// The same event (object, type, reason, message) repeated within ten minutes updates the first
// one's count and lastTimestamp instead of creating another object. Calls are synchronous (one
// request, bounded by the client's timeout) and thread-safe.

#include <cpprest/json.h>

#include <chrono>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "operator/kube/client.h"

namespace dispotify::op::kube {

enum class EventType : uint8_t { kNormal, kWarning };

inline constexpr std::string_view kReportingController = "dispotify-operator";

class EventRecorder {
 public:
  // `instance`: who reports (the operator pod's name), as reportingInstance and source.host.
  EventRecorder(KubeApi* api, std::string instance);

  // `involved`: the object the event is about (its kind, apiVersion, metadata.name, namespace, uid
  // and resourceVersion are referenced). `reason` is UpperCamelCase ("ScaledUp"), `message` for
  // humans. Events of a cluster-scoped object go to namespace "default".
  void Record(const web::json::value& involved, EventType type, std::string_view reason,
              std::string_view message);
  void Normal(const web::json::value& involved, std::string_view reason, std::string_view message) {
    Record(involved, EventType::kNormal, reason, message);
  }
  void Warning(const web::json::value& involved, std::string_view reason, std::string_view message) {
    Record(involved, EventType::kWarning, reason, message);
  }

  // The Event object Record creates (without sending it), for tests.
  static web::json::value BuildEvent(const web::json::value& involved, EventType type,
                                     std::string_view reason, std::string_view message,
                                     const std::string& instance, std::chrono::system_clock::time_point now);

 private:
  struct Seen {
    std::string ns, name;  // of the Event object
    int32_t count = 1;
    std::chrono::steady_clock::time_point last;
  };
  static constexpr size_t kMaxSeen = 512;

  KubeApi* const api_;
  const std::string instance_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // by object uid, type, reason and message
  std::list<std::string> order_;      // keys of seen_, oldest first
};

}  // namespace dispotify::op::kube
