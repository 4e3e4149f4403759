#include "operator/kube/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dispotify::op::kube {
namespace {

Result<std::string> ReadWholeFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "reading " + std::string(what) + " " + path);
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Status::IoError("reading " + std::string(what) + " " + path);
  return out.str();
}

std::string Trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// The entry named `name` of a kubeconfig list (clusters, users, contexts), or an undefined node.
YAML::Node FindNamed(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const YAML::Node& item : list) {  // a Node, not the iterator_value (no slicing copy)
    if (item["name"] && item["name"].as<std::string>() == name) return item;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string Str(const YAML::Node& n, const char* key) {
  const YAML::Node v = n[key];
  if (!v || v.IsNull()) return "";
  return v.as<std::string>();
}

// A PEM value given inline (base64 of the PEM, field `data_key`) or as a file (`file_key`).
Status ReadPem(const YAML::Node& n, const char* data_key, const char* file_key, const std::string& base_dir,
               const std::string& where, std::string* out) {
  if (const std::string data = Str(n, data_key); !data.empty()) {
    auto decoded = DecodeBase64(data);
    if (!decoded.ok()) {
      return Status::InvalidArgument(where + "." + data_key +
                                     " is not valid base64: " + decoded.status().message());
    }
    *out = std::move(*decoded);
    return Status::Ok();
  }
  if (const std::string file = Str(n, file_key); !file.empty()) {
    auto text = ReadWholeFile(Resolve(base_dir, file), where + "." + file_key);
    if (!text.ok()) return text.status();
    *out = std::move(*text);
  }
  return Status::Ok();
}

Result<KubeConfig> ParseNodes(const YAML::Node& root, const std::string& base_dir,
                              const std::string& context) {
  if (!root || !root.IsMap()) return Status::InvalidArgument("the kubeconfig is not a YAML mapping");
  KubeConfig c;
  const std::string ctx_name = context.empty() ? Str(root, "current-context") : context;
  if (ctx_name.empty()) {
    return Status::InvalidArgument("the kubeconfig has no current-context (and no context was named)");
  }
  const YAML::Node ctx_entry = FindNamed(root["contexts"], ctx_name);
  if (!ctx_entry) return Status::NotFound("the kubeconfig has no context named \"" + ctx_name + "\"");
  const YAML::Node ctx = ctx_entry["context"];
  if (!ctx || !ctx.IsMap())
    return Status::InvalidArgument("context \"" + ctx_name + "\" has no context: body");
  c.source = "context " + ctx_name;

  const std::string cluster_name = Str(ctx, "cluster");
  if (cluster_name.empty()) return Status::InvalidArgument("context \"" + ctx_name + "\" names no cluster");
  const YAML::Node cluster_entry = FindNamed(root["clusters"], cluster_name);
  if (!cluster_entry || !cluster_entry["cluster"] || !cluster_entry["cluster"].IsMap()) {
    return Status::NotFound("context \"" + ctx_name + "\" names cluster \"" + cluster_name +
                            "\", which the kubeconfig does not define");
  }
  const YAML::Node cluster = cluster_entry["cluster"];
  const std::string cwhere = "cluster \"" + cluster_name + "\"";
  c.server = Str(cluster, "server");
  if (c.server.empty()) return Status::InvalidArgument(cwhere + " has no server");
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0) {
    return Status::InvalidArgument(cwhere + " server \"" + c.server + "\" is not an http(s) URL");
  }
  if (cluster["insecure-skip-tls-verify"])
    c.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
  if (!Str(cluster, "tls-server-name").empty()) {
    return Status::InvalidArgument(cwhere + " sets tls-server-name, which this client does not support");
  }
  if (!Str(cluster, "proxy-url").empty()) {
    return Status::InvalidArgument(cwhere + " sets proxy-url, which this client does not support");
  }
  DISPOTIFY_RETURN_IF_ERROR(
      ReadPem(cluster, "certificate-authority-data", "certificate-authority", base_dir, cwhere, &c.ca_pem));

  // A context may name no user (an unauthenticated cluster); a named user must exist.
  if (const std::string user_name = Str(ctx, "user"); !user_name.empty()) {
    const YAML::Node user_entry = FindNamed(root["users"], user_name);
    if (!user_entry) {
      return Status::NotFound("context \"" + ctx_name + "\" names user \"" + user_name +
                              "\", which the kubeconfig does not define");
    }
    const YAML::Node user = user_entry["user"];
    const std::string uwhere = "user \"" + user_name + "\"";
    if (user && user.IsMap()) {
      for (const char* unsupported : {"exec", "auth-provider", "username", "password", "as"}) {
        if (user[unsupported]) {
          return Status::InvalidArgument(uwhere + " logs in with \"" + unsupported +
                                         "\", which this client does not support (use a token, a token "
                                         "file or a client certificate)");
        }
      }
      c.token = Str(user, "token");
      if (const std::string f = Str(user, "tokenFile"); !f.empty()) {
        c.token_file = Resolve(base_dir, f);
        struct stat st {};
        if (::stat(c.token_file.c_str(), &st) != 0) {
          return Status::FromErrno(errno, uwhere + ".tokenFile " + c.token_file);
        }
      }
      DISPOTIFY_RETURN_IF_ERROR(ReadPem(user, "client-certificate-data", "client-certificate", base_dir,
                                        uwhere, &c.client_cert_pem));
      DISPOTIFY_RETURN_IF_ERROR(
          ReadPem(user, "client-key-data", "client-key", base_dir, uwhere, &c.client_key_pem));
      if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
        return Status::InvalidArgument(
            uwhere + " has a client " +
            (c.client_cert_pem.empty() ? "key without a certificate" : "certificate without a key"));
      }
    }
  }
  if (const std::string ns = Str(ctx, "namespace"); !ns.empty()) c.ns = ns;
  return c;
}

}  // namespace

Result<KubeConfig> ParseKubeconfig(std::string_view yaml, const std::string& base_dir,
                                   const std::string& context) {
  try {
    return ParseNodes(YAML::Load(std::string(yaml)), base_dir, context);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("the kubeconfig is not valid: ") + e.what());
  }
}

Result<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  auto text = ReadWholeFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  auto c = ParseKubeconfig(*text, dir, context);
  if (!c.ok()) return Status::FromCode(c.status().code(), path + ": " + c.status().message());
  c->source = "kubeconfig " + path + ", " + c->source;
  return c;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): nothing here sets it
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<KubeConfig> LoadInCluster(const std::string& secrets_dir, const EnvLookup& env) {
  const auto host = env("KUBERNETES_SERVICE_HOST");
  const auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    return Status::FailedPrecondition(
        "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  KubeConfig c;
  c.source = "in-cluster";
  // An IPv6 service address needs brackets in a URL.
  const bool v6 = host->find(':') != std::string::npos;
  c.server = "https://" + (v6 ? "[" + *host + "]" : *host) + ":" + *port;
  c.token_file = secrets_dir + "/token";
  auto token = ReadWholeFile(c.token_file, "the service account token");
  if (!token.ok()) return token.status();
  if (Trim(*token).empty())
    return Status::FailedPrecondition("the service account token " + c.token_file + " is empty");
  auto ca = ReadWholeFile(secrets_dir + "/ca.crt", "the service account CA");
  if (!ca.ok()) return ca.status();
  c.ca_pem = std::move(*ca);
  // The namespace file is there in every pod; client-go falls back to "default" without it.
  if (auto ns = ReadWholeFile(secrets_dir + "/namespace", "namespace"); ns.ok() && !Trim(*ns).empty()) {
    c.ns = Trim(*ns);
  }
  return c;
}

Result<KubeConfig> LoadDefault(const EnvLookup& env) {
  if (const auto kc = env("KUBECONFIG"); kc && !kc->empty()) {
    return LoadKubeconfig(kc->substr(0, kc->find(':')));
  }
  if (const auto host = env("KUBERNETES_SERVICE_HOST"); host && !host->empty()) return LoadInCluster();
  const auto home = env("HOME");
  if (!home || home->empty()) {
    return Status::FailedPrecondition(
        "no Kubernetes configuration: KUBECONFIG, KUBERNETES_SERVICE_HOST and HOME unset");
  }
  return LoadKubeconfig(*home + "/.kube/config");
}

TokenSource::TokenSource(const KubeConfig& config) : fixed_(config.token), file_(config.token_file) {}

Result<std::string> TokenSource::Token() {
  if (file_.empty()) return fixed_;
  std::lock_guard lock(mu_);
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    const Status s = Status::FromErrno(errno, "the token file " + file_);
    if (stamp_) return cached_;  // gone for a moment during a rotation: the last token still works
    return s;
  }
  const FileStamp now{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      static_cast<uint64_t>(st.st_size),
                      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  if (stamp_ && *stamp_ == now) return cached_;
  auto text = ReadWholeFile(file_, "the token file");
  if (!text.ok()) {
    if (stamp_) return cached_;
    return text.status();
  }
  std::string token = Trim(*text);
  // It goes into an HTTP header: a line break would cut the request in two.
  for (char ch : token) {
    const auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) {
      return Status::InvalidArgument("the token file " + file_ +
                                     " holds more than one line or control characters");
    }
  }
  cached_ = std::move(token);
  stamp_ = now;
  return cached_;
}

void TokenSource::Invalidate() {
  std::lock_guard lock(mu_);
  stamp_.reset();
}

Result<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z') {
      v = ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
      v = ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
      v = ch - '0' + 52;
    } else if (ch == '+' || ch == '-') {
      v = 62;
    } else if (ch == '/' || ch == '_') {
      v = 63;
    } else if (ch == '=') {
      ++padding;
      continue;
    } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
      continue;
    } else {
      return Status::InvalidArgument(std::string("unexpected character '") + ch + "'");
    }
    if (padding > 0) return Status::InvalidArgument("data after the '=' padding");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // 6 leftover bits cannot end a valid encoding (one character short of a byte).
  if (bits >= 6 || padding > 2) return Status::InvalidArgument("truncated base64");
  return out;
}

}  // namespace dispotify::op::kube
