#pragma once
// An in-memory KubeApi for the client's own tests (informer, leader election, events): objects by
// path, a resourceVersion counter, 404/409 as the real server answers them, and a watch the test
// drives by hand (Emit events into it, End it with a status). Thread-safe.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "operator/kube/client.h"

namespace dispotify::op::kube::fakes {

class FakeKubeApi : public KubeApi {
 public:
  Result<web::json::value> Get(const ResourceRef& ref) override {
    std::lock_guard lock(mu_);
    ++gets;
    auto it = objects_.find(ObjectPath(ref));
    if (it == objects_.end()) return ApiError(404, "", "get " + Describe(ref));
    return it->second;
  }

  Result<ObjectList> List(const ResourceRef& ref, const ListOptions&) override {
    std::lock_guard lock(mu_);
    ++lists;
    if (!list_error_.ok()) return list_error_;
    ObjectList out;
    const std::string prefix = ResourcePath(ref) + "/";
    for (const auto& [path, obj] : objects_) {
      if (path.rfind(prefix, 0) == 0) out.items.push_back(obj);
    }
    out.resource_version = std::to_string(rv_);
    return out;
  }

  // Blocks, delivering what Emit sends, until End or stop.
  Status Watch(const ResourceRef&, const WatchOptions& options, const WatchHandler& handler,
               std::stop_token stop) override {
    std::unique_lock lock(mu_);
    ++watches;
    watch_versions_.push_back(options.resource_version);
    watching_ = true;
    cv_.notify_all();
    while (true) {
      cv_.wait(lock, stop, [&] { return !live_.empty() || end_.has_value(); });
      if (stop.stop_requested()) break;
      if (!live_.empty()) {
        WatchEvent e = std::move(live_.front());
        live_.pop_front();
        lock.unlock();
        handler(e);
        lock.lock();
        continue;
      }
      Status s = *end_;
      end_.reset();
      watching_ = false;
      cv_.notify_all();
      return s;
    }
    watching_ = false;
    cv_.notify_all();
    return Status::Ok();
  }

  Result<web::json::value> Create(const ResourceRef& ref, const web::json::value& object) override {
    std::lock_guard lock(mu_);
    ++creates;
    if (!write_error_.ok()) return write_error_;
    ResourceRef named = ref;
    named.name = MetaString(object, "name");
    const std::string path = ObjectPath(named);
    if (objects_.contains(path)) {
      return ApiError(409, R"({"reason":"AlreadyExists","message":"already exists"})", "create");
    }
    web::json::value stored = object;
    stored["metadata"]["resourceVersion"] = web::json::value::string(std::to_string(++rv_));
    stored["metadata"]["uid"] = web::json::value::string("uid-" + std::to_string(rv_));
    objects_[path] = stored;
    created_.push_back(stored);
    return stored;
  }

  Result<web::json::value> Update(const ResourceRef& ref, const web::json::value& object) override {
    std::lock_guard lock(mu_);
    ++updates;
    if (!write_error_.ok()) return write_error_;
    auto it = objects_.find(ObjectPath(ref));
    if (it == objects_.end()) return ApiError(404, "", "update");
    const std::string want = MetaString(object, "resourceVersion");
    if (!want.empty() && want != MetaString(it->second, "resourceVersion")) {
      return ApiError(409, R"({"reason":"Conflict","message":"the object has been modified"})", "update");
    }
    web::json::value stored = object;
    stored["metadata"]["resourceVersion"] = web::json::value::string(std::to_string(++rv_));
    it->second = stored;
    return stored;
  }

  Status Delete(const ResourceRef& ref, const DeleteOptions&) override {
    std::lock_guard lock(mu_);
    if (objects_.erase(ObjectPath(ref)) == 0) return ApiError(404, "", "delete");
    ++rv_;
    return Status::Ok();
  }

  // Server-side apply, roughly: the status subresource replaces only the status; the object itself
  // is replaced but keeps its status, uid and generation (bumped when the spec changes).
  Result<web::json::value> Apply(const ResourceRef& ref, const web::json::value& object) override {
    std::lock_guard lock(mu_);
    ++applies;
    if (!write_error_.ok()) return write_error_;
    auto it = objects_.find(ObjectPath(ref));
    web::json::value stored = object;
    if (ref.subresource == "status") {
      if (it == objects_.end()) return ApiError(404, "", "apply status");
      stored = it->second;
      stored["status"] = object.has_field("status") ? object.at("status") : web::json::value::object();
    } else if (it != objects_.end()) {
      const web::json::value& old = it->second;
      if (old.has_field("status")) stored["status"] = old.at("status");
      for (const char* f : {"uid", "generation", "creationTimestamp"}) {
        if (old.at("metadata").has_field(f)) stored["metadata"][f] = old.at("metadata").at(f);
      }
    }
    stored["metadata"]["resourceVersion"] = web::json::value::string(std::to_string(++rv_));
    objects_[ObjectPath(ref)] = stored;
    return stored;
  }

  // A shallow merge of the top-level fields (enough for these tests).
  Result<web::json::value> MergePatch(const ResourceRef& ref, const web::json::value& patch) override {
    std::lock_guard lock(mu_);
    ++patches;
    if (!write_error_.ok()) return write_error_;
    auto it = objects_.find(ObjectPath(ref));
    if (it == objects_.end()) return ApiError(404, "", "patch");
    for (const auto& [key, value] : patch.as_object()) it->second[key] = value;
    it->second["metadata"]["resourceVersion"] = web::json::value::string(std::to_string(++rv_));
    return it->second;
  }

  // --- Test controls ---
  void Put(const ResourceRef& ref, web::json::value object) {
    std::lock_guard lock(mu_);
    object["metadata"]["resourceVersion"] = web::json::value::string(std::to_string(++rv_));
    objects_[ObjectPath(ref)] = std::move(object);
  }
  void Remove(const ResourceRef& ref) {
    std::lock_guard lock(mu_);
    objects_.erase(ObjectPath(ref));
  }
  std::optional<web::json::value> Find(const ResourceRef& ref) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(ObjectPath(ref));
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  void Emit(WatchEvent e) {
    std::lock_guard lock(mu_);
    live_.push_back(std::move(e));
    cv_.notify_all();
  }
  // Ends the current (or next) watch with `s` once the events emitted before are delivered.
  void End(Status s) {
    std::lock_guard lock(mu_);
    end_ = std::move(s);
    cv_.notify_all();
  }
  // Waits until a watch is running and has taken every emitted event.
  bool WaitWatching(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return watching_ && live_.empty(); });
  }
  int64_t rv() {
    std::lock_guard lock(mu_);
    return rv_;
  }

  void SetListError(Status s) {
    std::lock_guard lock(mu_);
    list_error_ = std::move(s);
  }
  // Every Create, Update and MergePatch fails with `s` (a partition) until cleared with OK.
  void SetWriteError(Status s) {
    std::lock_guard lock(mu_);
    write_error_ = std::move(s);
  }
  std::vector<std::string> watch_versions() {
    std::lock_guard lock(mu_);
    return watch_versions_;
  }
  std::vector<web::json::value> created() {
    std::lock_guard lock(mu_);
    return created_;
  }

  std::atomic<int> gets{0}, lists{0}, watches{0}, creates{0}, updates{0}, patches{0}, applies{0};

 private:
  static std::string ObjectPath(ResourceRef ref) {
    ref.subresource.clear();
    return ResourcePath(ref);
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<std::string, web::json::value> objects_;
  int64_t rv_ = 100;
  std::deque<WatchEvent> live_;
  std::optional<Status> end_;
  bool watching_ = false;
  std::vector<std::string> watch_versions_;
  std::vector<web::json::value> created_;
  Status list_error_;
  Status write_error_;
};

}  // namespace dispotify::op::kube::fakes
