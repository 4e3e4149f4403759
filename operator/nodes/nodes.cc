#include "operator/nodes/nodes.h"

#include <cpprest/json.h>

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "common/rest/client.h"

namespace dispotify::op::nodes {
namespace {

using web::json::value;

// Reads the fields of one JSON object; the first problem is kept and named by its path.
class Fields {
 public:
  Fields(const value& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  uint64_t Uint(const char* key, bool required = true) {
    const value* v = Find(key, required);
    if (v == nullptr) return 0;
    if (!v->is_number() || !v->as_number().is_uint64()) {
      Fail(key, "must be a non-negative integer");
      return 0;
    }
    return v->as_number().to_uint64();
  }
  std::optional<uint64_t> OptionalUint(const char* key) {
    if (!obj_.has_field(key)) return std::nullopt;
    return Uint(key);
  }
  std::string String(const char* key, bool required = true) {
    const value* v = Find(key, required);
    if (v == nullptr) return "";
    if (!v->is_string()) {
      Fail(key, "must be a string");
      return "";
    }
    return v->as_string();
  }
  // One of `allowed`.
  std::string Enum(const char* key, std::initializer_list<std::string_view> allowed) {
    std::string s = String(key);
    if (status_.ok() && std::find(allowed.begin(), allowed.end(), s) == allowed.end())
      Fail(key, "has an unknown value \"" + s + "\"");
    return s;
  }
  bool Bool(const char* key, bool required = true) {
    const value* v = Find(key, required);
    if (v == nullptr) return false;
    if (!v->is_boolean()) {
      Fail(key, "must be true or false");
      return false;
    }
    return v->as_bool();
  }
  // nullptr when missing or of another type (a failure), or when optional and absent.
  const value* Array(const char* key) {
    const value* v = Find(key, true);
    if (v != nullptr && !v->is_array()) Fail(key, "must be an array");
    return status_.ok() ? v : nullptr;
  }
  const value* OptionalObject(const char* key) {
    const value* v = Find(key, false);
    if (v != nullptr && !v->is_object()) Fail(key, "must be an object");
    return status_.ok() ? v : nullptr;
  }

  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  void Fail(const std::string& key, const std::string& what) {
    if (status_.ok()) status_ = Status::InvalidArgument("/cluster/status: " + Path(key) + " " + what);
  }
  const Status& status() const { return status_; }

 private:
  const value* Find(const char* key, bool required) {
    if (!status_.ok()) return nullptr;
    if (!obj_.has_field(key)) {
      if (required) Fail(key, "is missing");
      return nullptr;
    }
    return &obj_.at(key);
  }

  const value& obj_;
  const std::string path_;
  Status status_;
};

Result<MemberStatus> ParseMember(const value& v, const std::string& path) {
  if (!v.is_object()) return Status::InvalidArgument("/cluster/status: " + path + " must be an object");
  Fields f(v, path);
  MemberStatus m;
  m.node_id = f.Uint("node_id");
  m.address = f.String("address");
  m.role = f.Enum("role", {"leader", "voter", "learner"});
  m.healthy = f.Bool("healthy");
  m.match_index = f.Uint("match_index");
  // Fields that older nodes may not write.
  m.draining = f.Bool("draining", false);
  m.node_uuid = f.String("node_uuid", false);
  m.incarnation_refused = f.Bool("incarnation_refused", false);
  m.files = f.OptionalUint("files");
  m.free_bytes = f.OptionalUint("free_bytes");
  if (!f.status().ok()) return f.status();
  return m;
}

}  // namespace

Result<NodeStatus> ParseNodeStatus(std::string_view json) {
  value root;
  try {
    root = value::parse(std::string(json));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("/cluster/status: not JSON: ") + e.what());
  }
  if (!root.is_object()) return Status::InvalidArgument("/cluster/status: not a JSON object");
  Fields f(root, "");
  NodeStatus s;
  s.node_id = f.Uint("node_id");
  s.role = f.Enum("role", {"follower", "pre-candidate", "candidate", "leader"});
  s.term = f.Uint("term");
  s.leader_id = f.Uint("leader_id");
  s.commit_index = f.Uint("commit_index");
  s.applied_index = f.Uint("applied_index");
  const uint64_t factor = f.Uint("replication_factor");
  if (factor > UINT32_MAX) f.Fail("replication_factor", "is too large");
  s.replication_factor = static_cast<uint32_t>(factor);
  s.node_uuid = f.String("node_uuid", false);
  s.cluster_id = f.String("cluster_id", false);
  s.version = f.String("version", false);
  const value* members = f.Array("members");
  const value* repair = f.OptionalObject("repair");
  const value* local = f.OptionalObject("local");
  if (!f.status().ok()) return f.status();
  for (size_t i = 0; i < members->size(); ++i) {
    auto m = ParseMember(members->at(i), "members[" + std::to_string(i) + "]");
    if (!m.ok()) return m.status();
    s.members.push_back(std::move(m).value());
  }
  if (repair != nullptr) {
    Fields r(*repair, "repair");
    s.under_replicated = r.OptionalUint("under_replicated");
    if (!r.status().ok()) return r.status();
  }
  // The answering node reports its own copies under "local", not among its peers'.
  if (local != nullptr) {
    Fields l(*local, "local");
    const auto files = l.OptionalUint("files");
    const auto free_bytes = l.OptionalUint("free_bytes");
    if (!l.status().ok()) return l.status();
    for (auto& m : s.members) {
      if (m.node_id != s.node_id) continue;
      if (!m.files) m.files = files;
      if (!m.free_bytes) m.free_bytes = free_bytes;
    }
  }
  return s;
}

namespace {

// The Status for an answer (or the lack of one) to `what` ("POST <url>").
Status FromReply(const Result<rest::HttpReply>& reply, const std::string& what) {
  if (!reply.ok()) return Status::Unavailable(what + ": " + reply.status().message());
  const int code = reply->status;
  if (code >= 200 && code < 300) return Status::Ok();
  const std::string msg = what + ": " + rest::DescribeHttpError(code, reply->body);
  switch (code) {
    case 503: return Status::Unavailable(msg);
    case 409: {
      const std::string error = rest::HttpErrorCode(reply->body);
      if (error == "already_exists") return Status::AlreadyExists(msg);
      if (error == "failed_precondition") return Status::FailedPrecondition(msg);
      return Status::Aborted(msg);
    }
    case 400: return Status::InvalidArgument(msg);
    case 404: return Status::NotFound(msg);
    case 401:
    case 403: return Status::FailedPrecondition(msg);
    case 504: return Status::Timeout(msg);
    default: return Status::IoError(msg);
  }
}

class HttpNodeAdmin : public NodeAdmin {
 public:
  explicit HttpNodeAdmin(NodeAdminOptions options) : options_(std::move(options)) {}

  Result<NodeStatus> GetStatus(const std::string& base_url) override {
    Result<rest::HttpReply> reply = Status::Unavailable("not sent");
    DISPOTIFY_RETURN_IF_ERROR(Send(base_url, "GET", "/cluster/status", nullptr, &reply));
    auto status = ParseNodeStatus(reply->body);
    if (!status.ok()) return Status::InvalidArgument(base_url + ": " + status.status().message());
    return status;
  }

  Status AddLearner(const std::string& base_url, uint64_t node_id, const std::string& address,
                    const std::string& node_uuid) override {
    value body = value::object();
    body["node_id"] = value::number(node_id);
    body["address"] = value::string(address);
    // An empty uuid is refused as malformed: leave it out ("unknown").
    if (!node_uuid.empty()) body["node_uuid"] = value::string(node_uuid);
    return Admin(base_url, "POST", "/admin/members", body);
  }

  Status Promote(const std::string& base_url, uint64_t node_id) override {
    return Admin(base_url, "POST", MemberPath(node_id) + "/promote");
  }

  Status RemoveMember(const std::string& base_url, uint64_t node_id) override {
    Status s = Admin(base_url, "DELETE", MemberPath(node_id));
    return s.code() == StatusCode::kNotFound ? Status::Ok() : s;
  }

  Status Drain(const std::string& base_url, uint64_t node_id) override {
    return Admin(base_url, "POST", MemberPath(node_id) + "/drain");
  }

  Status Undrain(const std::string& base_url, uint64_t node_id) override {
    return Admin(base_url, "DELETE", MemberPath(node_id) + "/drain");
  }

  Status TransferLeadership(const std::string& base_url, uint64_t target) override {
    value body = value::object();
    body["target"] = value::number(target);
    return Admin(base_url, "POST", "/admin/leadership", body);
  }

  Status SetReplicationFactor(const std::string& base_url, uint32_t factor) override {
    value body = value::object();
    body["factor"] = value::number(factor);
    return Admin(base_url, "PUT", "/admin/replication", body);
  }

 private:
  static std::string MemberPath(uint64_t node_id) { return "/admin/members/" + std::to_string(node_id); }

  Status Admin(const std::string& base_url, const std::string& method, const std::string& path,
               const std::optional<value>& body = std::nullopt) {
    Result<rest::HttpReply> reply = Status::Unavailable("not sent");
    const std::string text = body ? body->serialize() : "";
    return Send(base_url, method, path, body ? &text : nullptr, &reply);
  }

  // One request; OK when the node answered 2xx (the answer is then in *reply).
  Status Send(const std::string& base_url, const std::string& method, const std::string& path,
              const std::string* body, Result<rest::HttpReply>* reply) {
    const std::string what = method + " " + base_url + path;
    if (base_url.rfind("http://", 0) != 0 && base_url.rfind("https://", 0) != 0)
      return Status::InvalidArgument(what + ": the base URL must start with http:// or https://");
    rest::ClientOptions o;
    o.endpoints = {base_url};
    o.token = options_.token;
    o.timeout = options_.timeout;
    o.max_rounds = 1;
    rest::Client client(std::move(o));
    *reply = client.Call(method, path, body);
    return FromReply(*reply, what);
  }

  const NodeAdminOptions options_;
};

}  // namespace

std::unique_ptr<NodeAdmin> NewHttpNodeAdmin(NodeAdminOptions options) {
  return std::make_unique<HttpNodeAdmin>(std::move(options));
}

}  // namespace dispotify::op::nodes
