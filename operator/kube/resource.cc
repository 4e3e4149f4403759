#include "operator/kube/resource.h"

#include <cpprest/base_uri.h>

#include <cstdio>
#include <ctime>

namespace dispotify::op::kube {
namespace json = web::json;

ResourceType ConfigMaps() {
  return {"v1", "configmaps", true};
}
ResourceType Secrets() {
  return {"v1", "secrets", true};
}
ResourceType Services() {
  return {"v1", "services", true};
}
ResourceType Pods() {
  return {"v1", "pods", true};
}
ResourceType PersistentVolumeClaims() {
  return {"v1", "persistentvolumeclaims", true};
}
ResourceType Events() {
  return {"v1", "events", true};
}
ResourceType Namespaces() {
  return {"v1", "namespaces", false};
}
ResourceType StatefulSets() {
  return {"apps/v1", "statefulsets", true};
}
ResourceType PodDisruptionBudgets() {
  return {"policy/v1", "poddisruptionbudgets", true};
}
ResourceType NetworkPolicies() {
  return {"networking.k8s.io/v1", "networkpolicies", true};
}
ResourceType Leases() {
  return {"coordination.k8s.io/v1", "leases", true};
}
ResourceType CustomResourceDefinitions() {
  return {"apiextensions.k8s.io/v1", "customresourcedefinitions", false};
}

namespace {

std::string Encode(const std::string& s) {
  return web::uri::encode_data_string(s);
}

}  // namespace

std::string ResourcePath(const ResourceRef& ref) {
  // The core group has no group name: its api_version has no slash.
  std::string path = ref.type.api_version.find('/') == std::string::npos ? "/api/" : "/apis/";
  path += ref.type.api_version;
  if (ref.type.namespaced && !ref.ns.empty()) path += "/namespaces/" + Encode(ref.ns);
  path += "/" + ref.type.plural;
  if (!ref.name.empty()) {
    path += "/" + Encode(ref.name);
    if (!ref.subresource.empty()) path += "/" + ref.subresource;
  }
  return path;
}

std::string Describe(const ResourceRef& ref) {
  std::string s = ref.type.plural;
  if (!ref.subresource.empty()) s += "/" + ref.subresource;
  const bool in_ns = ref.type.namespaced && !ref.ns.empty();
  if (!ref.name.empty()) return s + " " + (in_ns ? ref.ns + "/" : "") + ref.name;
  if (in_ns) return s + " in " + ref.ns;
  return ref.type.namespaced ? s + " in all namespaces" : s;
}

std::string EncodeQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    q += q.empty() ? "?" : "&";
    q += Encode(key) + "=" + Encode(value);
  }
  return q;
}

namespace {

// The reason phrase for the codes the API server uses.
std::string_view ReasonPhrase(int code) {
  switch (code) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

std::string StringField(const json::value& v, const char* key) {
  if (!v.is_object() || !v.has_field(key) || !v.at(key).is_string()) return "";
  return v.at(key).as_string();
}

Status Make(int code, const std::string& reason, const std::string& message, std::string_view what) {
  std::string text = "HTTP " + std::to_string(code);
  if (const auto phrase = ReasonPhrase(code); !phrase.empty()) text += " " + std::string(phrase);
  if (!what.empty()) text += " (" + std::string(what) + ")";
  if (!message.empty()) text += ": " + message;
  if (code == 404) return Status::NotFound(std::move(text));
  if (code == 409) {
    return reason == "AlreadyExists" ? Status::AlreadyExists(std::move(text))
                                     : Status::Aborted(std::move(text));
  }
  if (code == 410) return Status::Compacted(std::move(text));
  if (code == 400 || code == 415 || code == 422) return Status::InvalidArgument(std::move(text));
  if (code == 401 || code == 403) return Status::FailedPrecondition(std::move(text));
  if (code == 408 || code == 504) return Status::Timeout(std::move(text));
  if (code == 429 || code >= 500) return Status::Unavailable(std::move(text));
  return Status::IoError(std::move(text));
}

}  // namespace

Status ApiErrorFromStatusObject(const json::value& status, std::string_view what) {
  int code = 500;
  if (status.is_object() && status.has_field("code") && status.at("code").is_integer()) {
    code = status.at("code").as_integer();
  }
  return Make(code, StringField(status, "reason"), StringField(status, "message"), what);
}

Status ApiError(int http_code, std::string_view body, std::string_view what) {
  std::string reason;
  std::string message;
  try {
    const auto v = json::value::parse(std::string(body));
    reason = StringField(v, "reason");
    message = StringField(v, "message");
  } catch (const std::exception&) {
    // not a Status object: show the start of the text
  }
  if (message.empty()) {
    message = std::string(body.substr(0, 300));
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  }
  return Make(http_code, reason, message, what);
}

std::optional<int> HttpCode(const Status& s) {
  const std::string& m = s.message();
  if (s.ok() || m.size() < 8 || m.compare(0, 5, "HTTP ") != 0) return std::nullopt;
  int code = 0;
  for (size_t i = 5; i < 8; ++i) {
    if (m[i] < '0' || m[i] > '9') return std::nullopt;
    code = code * 10 + (m[i] - '0');
  }
  if (m.size() > 8 && m[8] != ' ' && m[8] != ':') return std::nullopt;
  return code;
}

std::string_view WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded: return "ADDED";
    case WatchEventType::kModified: return "MODIFIED";
    case WatchEventType::kDeleted: return "DELETED";
    case WatchEventType::kBookmark: return "BOOKMARK";
    case WatchEventType::kError: return "ERROR";
  }
  return "?";
}

Result<WatchEvent> ParseWatchEvent(std::string_view line) {
  json::value v;
  try {
    v = json::value::parse(std::string(line));
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("a watch event that is not JSON (") + e.what() +
                              "): " + std::string(line.substr(0, 200)));
  }
  const std::string type = StringField(v, "type");
  WatchEvent event;
  if (type == "ADDED")
    event.type = WatchEventType::kAdded;
  else if (type == "MODIFIED")
    event.type = WatchEventType::kModified;
  else if (type == "DELETED")
    event.type = WatchEventType::kDeleted;
  else if (type == "BOOKMARK")
    event.type = WatchEventType::kBookmark;
  else if (type == "ERROR")
    event.type = WatchEventType::kError;
  else
    return Status::Corruption("a watch event of unknown type \"" + type +
                              "\": " + std::string(line.substr(0, 200)));
  if (!v.has_field("object") || !v.at("object").is_object()) {
    return Status::Corruption("a watch event without an object: " + std::string(line.substr(0, 200)));
  }
  event.object = v.at("object");
  return event;
}

std::optional<std::string> LineSplitter::Next() {
  while (true) {
    const size_t nl = buffer_.find('\n', start_);
    if (nl == std::string::npos) {
      // Keep the buffer from growing with consumed bytes.
      if (start_ > 0) {
        buffer_.erase(0, start_);
        start_ = 0;
      }
      return std::nullopt;
    }
    size_t end = nl;
    if (end > start_ && buffer_[end - 1] == '\r') --end;
    std::string line = buffer_.substr(start_, end - start_);
    start_ = nl + 1;
    if (!line.empty()) return line;
  }
}

std::string MetaString(const json::value& object, const char* field) {
  if (!object.is_object() || !object.has_field("metadata")) return "";
  return StringField(object.at("metadata"), field);
}

std::string ObjectKey(const json::value& object) {
  const std::string ns = MetaString(object, "namespace");
  const std::string name = MetaString(object, "name");
  return ns.empty() ? name : ns + "/" + name;
}

std::string FormatTime(std::chrono::system_clock::time_point t, bool micros) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  if (micros) {
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(us % 1000000));
  } else {
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

}  // namespace dispotify::op::kube
