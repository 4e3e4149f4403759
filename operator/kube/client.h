#pragma once
// The operator's Kubernetes client: KubeApi, the few calls the operator makes on any resource, with
// objects as plain JSON values (web::json::value) in and out, so that the reconciler's tests can
// run it against an in-memory fake; and NewHttpsKubeApi, the real one over HTTPS.
//
// Errors are Status values described in resource.h: kNotFound (404), kAlreadyExists, kAborted (409
// conflict: re-read and retry), kCompacted (410 Gone: relist), ...; the message carries the HTTP
// code and the API server's own message.
//
// The HTTPS client (cpprestsdk, which stays out of this header but for its JSON type):
//   - TLS is always verified against the configuration's CA (only it: the system's roots are
//     trusted only when the configuration names no CA), unless the kubeconfig says
//     insecure-skip-tls-verify; a client certificate and key are offered when configured.
//   - The bearer token comes from TokenSource (re-read when its file changes; after a 401 it is
//     re-read and the request sent once more).
//   - Every request is bounded by HttpOptions::request_timeout of silence from the server; a watch
//     by its timeoutSeconds plus a margin.

#include <cpprest/json.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "operator/kube/config.h"
#include "operator/kube/resource.h"

namespace dispotify::op::kube {

inline constexpr std::string_view kFieldManager = "dispotify-operator";

struct ListOptions {
  std::string label_selector;  // "app=x,tier!=y"
  std::string field_selector;  // "metadata.name=x"
  // "" reads the latest state (a quorum read); "0" accepts any state the server has cached.
  std::string resource_version;
  // Objects per request; the list is read page by page (limit/continue) until complete.
  int64_t page_size = 500;
};

struct ObjectList {
  // Each item with its kind and apiVersion filled in (the server leaves them out of list items).
  std::vector<web::json::value> items;
  std::string resource_version;  // of the list: watch from here
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  // Events after this version (a List's or the last event's); "" starts at the current state, with
  // a synthetic ADDED for every existing object.
  std::string resource_version;
  // The server ends the watch after this long (timeoutSeconds); the caller watches again from the
  // last resourceVersion it saw.
  std::chrono::seconds timeout{300};
  bool allow_bookmarks = true;  // BOOKMARK events advance the resourceVersion of a quiet watch
};

// Called on the thread that called Watch, once per event, in order.
using WatchHandler = std::function<void(const WatchEvent& event)>;

struct DeleteOptions {
  std::string propagation_policy;  // "Background", "Foreground", "Orphan", or "" (the kind's default)
  std::string precondition_uid;    // delete only this incarnation of the name
  std::string precondition_resource_version;
};

class KubeApi {
 public:
  virtual ~KubeApi() = default;

  virtual Result<web::json::value> Get(const ResourceRef& ref) = 0;

  // `ref` names a collection: a namespace, or every namespace with ns "".
  virtual Result<ObjectList> List(const ResourceRef& ref, const ListOptions& options) = 0;

  // Streams the changes to a collection into `handler` until the server ends the watch (OK), `stop`
  // is requested (OK, within a bounded time whatever the server does), or an error. A 410 Gone,
  // whether it is the answer's status or an ERROR event inside a 200 stream, returns kCompacted:
  // the resourceVersion is too old and the caller must list again. Any other ERROR event ends the
  // watch with its mapped status. ERROR events reach the handler too, before Watch returns.
  virtual Status Watch(const ResourceRef& ref, const WatchOptions& options, const WatchHandler& handler,
                       std::stop_token stop) = 0;

  // POST to the collection `ref` names (its name, if any, is ignored: the object's own is used).
  virtual Result<web::json::value> Create(const ResourceRef& ref, const web::json::value& object) = 0;
  // PUT of the whole object (ref may name the "status" subresource). With metadata.resourceVersion
  // set, a concurrent change fails the update with kAborted (409 conflict).
  virtual Result<web::json::value> Update(const ResourceRef& ref, const web::json::value& object) = 0;
  // kNotFound when there was nothing to delete.
  virtual Status Delete(const ResourceRef& ref, const DeleteOptions& options) = 0;
  // Server-side apply: PATCH application/apply-patch+yaml (the JSON object is the YAML) with
  // fieldManager=dispotify-operator and force=true. The object carries apiVersion, kind and
  // metadata.name. With ref.subresource "status", applies the status.
  virtual Result<web::json::value> Apply(const ResourceRef& ref, const web::json::value& object) = 0;
  // PATCH application/merge-patch+json (RFC 7386).
  virtual Result<web::json::value> MergePatch(const ResourceRef& ref, const web::json::value& patch) = 0;
};

// Runs `attempt` (typically: read, change, Update with the resourceVersion read) again while it
// fails with a conflict (kAborted), up to `max_attempts` times, waiting 10, 20, 40... ms in between
// (client-go's retry.RetryOnConflict). Returns the last attempt's status.
Status RetryOnConflict(const std::function<Status()>& attempt, int max_attempts = 5);

struct HttpOptions {
  // How long a request may wait for the server without a byte (connect, TLS, answer).
  std::chrono::milliseconds request_timeout{30000};
  // Added to a watch's timeoutSeconds before the client gives up on a silent watch.
  std::chrono::milliseconds watch_margin{30000};
  std::string user_agent = "dispotify-operator";
  std::string field_manager = std::string(kFieldManager);
};

// The KubeApi of the API server `config` names. Fails when the configuration's certificates or key
// cannot be used.
Result<std::unique_ptr<KubeApi>> NewHttpsKubeApi(const KubeConfig& config, const HttpOptions& options = {});

}  // namespace dispotify::op::kube
