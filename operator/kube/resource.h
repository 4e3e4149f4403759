#pragma once
// How the Kubernetes API names things, and the wire details of talking to it that do not need a
// network: URL paths and queries, the API server's errors as Status values, and the lines of a
// watch stream. Pure functions, unit-tested without a server.
//
// Paths (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris):
//   core group:   /api/v1[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]
//   named groups: /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]
//
// Errors: an answer outside 2xx becomes a Status whose message starts "HTTP <code> <reason>: "
// followed by the server's own message (from its Status object); HttpCode() reads the code back.
// The codes callers act on are distinct:
//   kNotFound            404
//   kAlreadyExists       409 with reason AlreadyExists (a Create of a name in use)
//   kAborted             409 Conflict: the resourceVersion or a precondition did not match; re-read
//   kCompacted           410 Gone (reason Expired): the resourceVersion is too old; relist
//   kInvalidArgument     400, 415, 422 (the object is invalid)
//   kFailedPrecondition  401, 403 (not allowed)
//   kTimeout             408, 504, no answer in time
//   kUnavailable         429, other 5xx, the server cannot be reached

#include <cpprest/json.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dispotify::op::kube {

// A kind of resource as the URL paths name it.
struct ResourceType {
  std::string api_version;  // "v1" (the core group), "apps/v1", "dispotify.io/v1alpha1"
  std::string plural;       // "configmaps"
  bool namespaced = true;
};

// An object, a collection (empty name) or a subresource of an object.
struct ResourceRef {
  ResourceType type;
  std::string ns;           // ignored for cluster-scoped types; "" in a List or Watch: all namespaces
  std::string name;         // "" for the collection
  std::string subresource;  // "status", "scale" or ""
};

// Resource types the operator and its tests use.
ResourceType ConfigMaps();
ResourceType Secrets();
ResourceType Services();
ResourceType Pods();
ResourceType PersistentVolumeClaims();
ResourceType Events();
ResourceType Namespaces();
ResourceType StatefulSets();
ResourceType PodDisruptionBudgets();
ResourceType NetworkPolicies();
ResourceType Leases();
ResourceType CustomResourceDefinitions();

// "/api/v1/namespaces/ns/configmaps/name" (names and namespaces are percent-encoded).
std::string ResourcePath(const ResourceRef& ref);
// "configmaps ns/name" or "configmaps/status ns/name", for messages.
std::string Describe(const ResourceRef& ref);

// "?a=1&b=x%20y" from the pairs whose value is not empty; "" when none.
std::string EncodeQuery(const std::vector<std::pair<std::string, std::string>>& params);

// The Status for an answer outside 2xx (the body is the server's Status object, or anything).
Status ApiError(int http_code, std::string_view body, std::string_view what);
// The same from a Status object already parsed (a watch's ERROR event).
Status ApiErrorFromStatusObject(const web::json::value& status, std::string_view what);
// The HTTP code of a Status made by ApiError; nullopt for other statuses.
std::optional<int> HttpCode(const Status& s);

inline bool IsNotFound(const Status& s) {
  return s.code() == StatusCode::kNotFound;
}
inline bool IsConflict(const Status& s) {
  return s.code() == StatusCode::kAborted;
}
inline bool IsGone(const Status& s) {
  return s.code() == StatusCode::kCompacted;
}

// --- Watch streams -------------------------------------------------------------------------------
// A watch answer is a stream of JSON objects, one per line: {"type":"ADDED","object":{...}}.

enum class WatchEventType : uint8_t { kAdded, kModified, kDeleted, kBookmark, kError };
std::string_view WatchEventTypeName(WatchEventType t);  // "ADDED", ...

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  // The object; for kBookmark only its kind, apiVersion and metadata.resourceVersion; for kError
  // a Status object ({"kind":"Status","code":410,"reason":"Expired","message":...}).
  web::json::value object;
};

// One line of a watch stream (without its newline).
Result<WatchEvent> ParseWatchEvent(std::string_view line);

// Cuts a byte stream into lines as the bytes arrive.
class LineSplitter {
 public:
  void Append(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete line without its "\n" (and "\r"), skipping empty ones.
  std::optional<std::string> Next();
  size_t pending() const { return buffer_.size() - start_; }
  // What has not been taken as a line yet.
  std::string Rest() const { return buffer_.substr(start_); }

 private:
  std::string buffer_;
  size_t start_ = 0;
};

// --- Object helpers --------------------------------------------------------------------------------

// metadata.<field> of an object as a string ("" when absent or not a string).
std::string MetaString(const web::json::value& object, const char* field);
// "ns/name", or "name" for an object without a namespace.
std::string ObjectKey(const web::json::value& object);

// RFC 3339 UTC time with microseconds ("2026-12-06T14:10:44.123456Z"), as MicroTime fields hold it;
// with `micros` false, whole seconds (metav1.Time).
std::string FormatTime(std::chrono::system_clock::time_point t, bool micros = true);

}  // namespace dispotify::op::kube
