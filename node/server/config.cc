#include "node/server/config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "common/logging.h"

extern char** environ;

namespace dispotify::server {
namespace {

// One setter per key, shared by YAML, env and flags (all arrive as text).
using Setter = std::function<Status(NodeConfig*, const std::string&)>;

template <typename T>
Status ParseInt(const std::string& key, const std::string& text, T min, T max, T* out) {
  T v{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return Status::InvalidArgument(key + ": '" + text + "' is not an integer");
  }
  if (v < min || v > max) {
    return Status::InvalidArgument(key + ": " + text + " is out of range [" + std::to_string(min) + ", " +
                                   std::to_string(max) + "]");
  }
  *out = v;
  return Status::Ok();
}

Status ParseBool(const std::string& key, const std::string& text, bool* out) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") {
    *out = true;
  } else if (text == "false" || text == "0" || text == "no" || text == "off") {
    *out = false;
  } else {
    return Status::InvalidArgument(key + ": '" + text + "' is not a boolean");
  }
  return Status::Ok();
}

Status CheckHostPort(const std::string& key, const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument(key + ": '" + text + "' is not HOST:PORT");
  }
  int port = 0;
  return ParseInt(key + " port", text.substr(colon + 1), 0, 65535, &port);
}

const std::map<std::string, Setter>& Setters() {
  static const std::map<std::string, Setter> kSetters = {
      {"node_id",
       [](NodeConfig* c, const std::string& v) {
         uint64_t id = 0;
         DISPOTIFY_RETURN_IF_ERROR(ParseInt<uint64_t>("node_id", v, 1, UINT64_MAX, &id));
         c->node_id = NodeId(id);
         c->node_id_set = true;
         return Status::Ok();
       }},
      {"pod_ordinal",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<int64_t>("pod_ordinal", v, -1, INT64_MAX - 1, &c->pod_ordinal);
       }},
      {"bootstrap_node_id",
       [](NodeConfig* c, const std::string& v) {
         uint64_t id = 0;
         DISPOTIFY_RETURN_IF_ERROR(ParseInt<uint64_t>("bootstrap_node_id", v, 0, UINT64_MAX, &id));
         c->bootstrap_node_id = NodeId(id);
         return Status::Ok();
       }},
      {"force_new_cluster",
       [](NodeConfig* c, const std::string& v) {
         if (v.size() > 128) return Status::InvalidArgument("force_new_cluster: at most 128 characters");
         c->force_new_cluster = v;
         return Status::Ok();
       }},
      {"force_new_cluster_node",
       [](NodeConfig* c, const std::string& v) {
         uint64_t id = 0;
         DISPOTIFY_RETURN_IF_ERROR(ParseInt<uint64_t>("force_new_cluster_node", v, 0, UINT64_MAX, &id));
         c->force_new_cluster_node = NodeId(id);
         return Status::Ok();
       }},
      {"cluster_id",
       [](NodeConfig* c, const std::string& v) {
         if (v.empty()) return Status::InvalidArgument("cluster_id: must not be empty");
         c->cluster_id = v;
         return Status::Ok();
       }},
      {"data_dir",
       [](NodeConfig* c, const std::string& v) {
         if (v.empty()) return Status::InvalidArgument("data_dir: must not be empty");
         c->data_dir = v;
         return Status::Ok();
       }},
      {"listen",
       [](NodeConfig* c, const std::string& v) {
         DISPOTIFY_RETURN_IF_ERROR(CheckHostPort("listen", v));
         c->listen = v;
         return Status::Ok();
       }},
      {"peers",
       [](NodeConfig* c, const std::string& v) {
         auto peers = ParsePeers(v);
         if (!peers.ok()) return peers.status();
         c->peers = std::move(peers).value();
         return Status::Ok();
       }},
      {"join", [](NodeConfig* c, const std::string& v) { return ParseBool("join", v, &c->join); }},
      {"reset_removed",
       [](NodeConfig* c, const std::string& v) { return ParseBool("reset_removed", v, &c->reset_removed); }},
      {"metrics_listen",
       [](NodeConfig* c, const std::string& v) {
         DISPOTIFY_RETURN_IF_ERROR(CheckHostPort("metrics_listen", v));
         c->metrics_listen = v;
         return Status::Ok();
       }},
      {"tick_ms",
       [](NodeConfig* c, const std::string& v) { return ParseInt("tick_ms", v, 1, 10000, &c->tick_ms); }},
      {"election_ticks",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("election_ticks", v, 2, 1000, &c->election_ticks);
       }},
      {"snapshot_entries",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint64_t>("snapshot_entries", v, 1, UINT64_MAX, &c->snapshot_entries);
       }},
      {"state_machine",
       [](NodeConfig* c, const std::string& v) {
         if (v != "catalog" && v != "kv")
           return Status::InvalidArgument("state_machine: '" + v + "' is not catalog or kv");
         c->state_machine = v;
         return Status::Ok();
       }},
      {"metadata_store",
       [](NodeConfig* c, const std::string& v) {
         if (v != "embedded" && v != "postgres") {
           return Status::InvalidArgument("metadata_store: '" + v + "' is not embedded or postgres");
         }
         c->metadata_store = v;
         return Status::Ok();
       }},
      {"postgres_url",
       [](NodeConfig* c, const std::string& v) {
         c->postgres_url = v;
         return Status::Ok();
       }},
      {"replication_factor",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint32_t>("replication_factor", v, 1, 16, &c->replication_factor);
       }},
      {"repair_interval_ms",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("repair_interval_ms", v, 10, 3600000, &c->repair_interval_ms);
       }},
      {"scrub_interval_s",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("scrub_interval_s", v, 0, 30 * 86400, &c->scrub_interval_s);
       }},
      {"repair_bytes_per_s",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint64_t>("repair_bytes_per_s", v, 0, UINT64_MAX, &c->repair_bytes_per_s);
       }},
      {"repair_concurrency",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("repair_concurrency", v, 1, 64, &c->repair_concurrency);
       }},
      {"advertise",
       [](NodeConfig* c, const std::string& v) {
         if (!v.empty()) DISPOTIFY_RETURN_IF_ERROR(CheckHostPort("advertise", v));
         c->advertise = v;
         return Status::Ok();
       }},
      {"inventory_interval_ms",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("inventory_interval_ms", v, 0, 86400000, &c->inventory_interval_ms);
       }},
      {"orphan_grace_ms",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<int64_t>("orphan_grace_ms", v, 0, int64_t{30} * 86400000, &c->orphan_grace_ms);
       }},
      {"read_timeout_ms",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("read_timeout_ms", v, 1, 600000, &c->read_timeout_ms);
       }},
      {"upload_lock_ttl_ms",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("upload_lock_ttl_ms", v, 100, 86400000, &c->upload_lock_ttl_ms);
       }},
      {"http_listen",
       [](NodeConfig* c, const std::string& v) {
         if (!v.empty()) DISPOTIFY_RETURN_IF_ERROR(CheckHostPort("http_listen", v));
         c->http_listen = v;
         return Status::Ok();
       }},
      {"http_workers",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("http_workers", v, 1, 256, &c->http_workers);
       }},
      {"http_tls_cert_file",
       [](NodeConfig* c, const std::string& v) {
         c->http_tls_cert_file = v;
         return Status::Ok();
       }},
      {"http_tls_key_file",
       [](NodeConfig* c, const std::string& v) {
         c->http_tls_key_file = v;
         return Status::Ok();
       }},
      {"http_tls_client_ca_file",
       [](NodeConfig* c, const std::string& v) {
         c->http_tls_client_ca_file = v;
         return Status::Ok();
       }},
      {"max_upload_mib",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint64_t>("max_upload_mib", v, 1, 1 << 20, &c->max_upload_mib);
       }},
      {"dead_after_s",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint64_t>("dead_after_s", v, 0, uint64_t{1} << 32, &c->dead_after_s);
       }},
      {"min_free_mib",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint64_t>("min_free_mib", v, 0, uint64_t{1} << 30, &c->min_free_mib);
       }},
      {"api_token",
       [](NodeConfig* c, const std::string& v) {
         c->api_token = v;
         return Status::Ok();
       }},
      {"api_token_file",
       [](NodeConfig* c, const std::string& v) {
         c->api_token_file = v;
         return Status::Ok();
       }},
      {"web_root",
       [](NodeConfig* c, const std::string& v) {
         c->web_root = v;
         return Status::Ok();
       }},
      {"auth", [](NodeConfig* c, const std::string& v) { return ParseBool("auth", v, &c->auth); }},
      {"admin_user",
       [](NodeConfig* c, const std::string& v) {
         c->admin_user = v;
         return Status::Ok();
       }},
      {"admin_password_file",
       [](NodeConfig* c, const std::string& v) {
         c->admin_password_file = v;
         return Status::Ok();
       }},
      {"session_ttl_s",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<int64_t>("session_ttl_s", v, 60, 30LL * 24 * 3600, &c->session_ttl_s);
       }},
      {"secure_cookies",
       [](NodeConfig* c, const std::string& v) { return ParseBool("secure_cookies", v, &c->secure_cookies); }},
      {"audit_retention_days",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<int64_t>("audit_retention_days", v, 0, 36500, &c->audit_retention_days);
       }},
      {"audit_max_entries",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<uint64_t>("audit_max_entries", v, 0, 1'000'000'000, &c->audit_max_entries);
       }},
      {"oidc_issuer",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_issuer = v;
         return Status::Ok();
       }},
      {"oidc_audience",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_audience = v;
         return Status::Ok();
       }},
      {"oidc_roles_claim",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_roles_claim = v;
         return Status::Ok();
       }},
      {"oidc_leeway_s",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt<int64_t>("oidc_leeway_s", v, 0, 600, &c->oidc_leeway_s);
       }},
      {"oidc_client_id",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_client_id = v;
         return Status::Ok();
       }},
      {"oidc_client_secret_file",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_client_secret_file = v;
         return Status::Ok();
       }},
      {"oidc_redirect_uri",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_redirect_uri = v;
         return Status::Ok();
       }},
      {"oidc_scopes",
       [](NodeConfig* c, const std::string& v) {
         c->oidc_scopes = v;
         return Status::Ok();
       }},
      {"tls_cert_file",
       [](NodeConfig* c, const std::string& v) {
         c->tls_cert_file = v;
         return Status::Ok();
       }},
      {"tls_key_file",
       [](NodeConfig* c, const std::string& v) {
         c->tls_key_file = v;
         return Status::Ok();
       }},
      {"tls_ca_file",
       [](NodeConfig* c, const std::string& v) {
         c->tls_ca_file = v;
         return Status::Ok();
       }},
      {"tls_poll_interval_ms",
       [](NodeConfig* c, const std::string& v) {
         return ParseInt("tls_poll_interval_ms", v, 10, 3600000, &c->tls_poll_interval_ms);
       }},
      {"insecure_grpc",
       [](NodeConfig* c, const std::string& v) { return ParseBool("insecure_grpc", v, &c->insecure_grpc); }},
      {"postgres_url_file",
       [](NodeConfig* c, const std::string& v) {
         c->postgres_url_file = v;
         return Status::Ok();
       }},
      {"auto_promote",
       [](NodeConfig* c, const std::string& v) { return ParseBool("auto_promote", v, &c->auto_promote); }},
      // Encryption at rest (the keyring itself is loaded and checked by the node at start).
      {"encryption_keyring_file",
       [](NodeConfig* c, const std::string& v) {
         c->encryption_keyring_file = v;
         return Status::Ok();
       }},
      {"log_level",
       [](NodeConfig* c, const std::string& v) {
         LogLevel level;
         if (!ParseLogLevel(v, &level)) {
           return Status::InvalidArgument("log_level: '" + v + "' is not one of debug, info, warning, error");
         }
         c->log_level = v;
         return Status::Ok();
       }},
  };
  return kSetters;
}

std::string FlagToKey(std::string_view flag) {
  std::string key(flag);
  for (char& ch : key) {
    if (ch == '-') ch = '_';
  }
  return key;
}

}  // namespace

Result<std::map<NodeId, std::string>> ParsePeers(std::string_view text) {
  std::map<NodeId, std::string> peers;
  std::string item;
  std::stringstream ss{std::string(text)};
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("peers: '" + item + "' is not ID=HOST:PORT");
    }
    uint64_t id = 0;
    DISPOTIFY_RETURN_IF_ERROR(ParseInt<uint64_t>("peers id", item.substr(0, eq), 1, UINT64_MAX, &id));
    std::string addr = item.substr(eq + 1);
    DISPOTIFY_RETURN_IF_ERROR(CheckHostPort("peers address of " + std::to_string(id), addr));
    if (!peers.emplace(NodeId(id), addr).second) {
      return Status::InvalidArgument("peers: node " + std::to_string(id) + " is listed twice");
    }
  }
  return peers;
}

Status ApplyYaml(std::string_view yaml_text, NodeConfig* config) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return Status::Ok();  // an empty file keeps every default
  if (!root.IsMap()) return Status::InvalidArgument("the configuration must be a YAML mapping of key: value");
  const auto& setters = Setters();
  for (const auto& kv : root) {
    std::string key;
    try {
      key = kv.first.as<std::string>();
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument("invalid key at line " + std::to_string(kv.first.Mark().line + 1));
    }
    auto it = setters.find(key);
    if (it == setters.end()) {
      return Status::InvalidArgument("unknown key '" + key + "' at line " +
                                     std::to_string(kv.first.Mark().line + 1));
    }
    std::string value;
    const YAML::Node& v = kv.second;
    if (key == "peers" && v.IsMap()) {
      for (const auto& p : v) {
        if (!value.empty()) value += ",";
        value += p.first.Scalar() + "=" + p.second.Scalar();
      }
    } else if (v.IsScalar()) {
      value = v.Scalar();
    } else {
      return Status::InvalidArgument("key '" + key + "' at line " + std::to_string(kv.first.Mark().line + 1) +
                                     " needs a scalar value");
    }
    Status st = it->second(config, value);
    if (!st.ok()) {
      return Status::InvalidArgument(st.message() + " (line " + std::to_string(kv.first.Mark().line + 1) +
                                     ")");
    }
  }
  return Status::Ok();
}

namespace {

// `<key>_file` names a file (a Docker or Kubernetes secret) that holds `<key>`'s value.
Status ReadSecretFile(const std::string& key, const std::string& path, std::string* value) {
  if (path.empty()) return Status::Ok();
  if (!value->empty())
    return Status::InvalidArgument(key + " and " + key + "_file are both set; set only one");
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(key + "_file: cannot read " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  // A secret written with `echo` or an editor ends in a newline that is no part of the value.
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  // An empty token would leave the admin API open, which is not what naming a file asks for.
  if (text.empty()) return Status::InvalidArgument(key + "_file: " + path + " is empty");
  *value = std::move(text);
  return Status::Ok();
}

}  // namespace

Status Validate(NodeConfig* config) {
  if (config->pod_ordinal >= 0) {
    const NodeId from_ordinal(static_cast<uint64_t>(config->pod_ordinal) + 1);
    if (config->node_id_set && config->node_id != from_ordinal) {
      return Status::InvalidArgument("node_id " + std::to_string(config->node_id.value()) +
                                     " contradicts pod_ordinal " + std::to_string(config->pod_ordinal) +
                                     " (which means node id " + std::to_string(from_ordinal.value()) +
                                     "); set only one of them");
    }
    config->node_id = from_ordinal;
  }
  if (config->bootstrap_node_id != kNoNode) {
    // The bootstrap node creates the cluster alone; everyone else waits to be added. Whether it
    // really bootstraps is decided on the data directory: one with Raft state always resumes.
    if (config->node_id == config->bootstrap_node_id) {
      if (config->join) {
        return Status::InvalidArgument("join: true contradicts bootstrap_node_id " +
                                       std::to_string(config->bootstrap_node_id.value()) +
                                       " (this node, which starts the cluster)");
      }
      // `peers`, if any, are the addresses the joining nodes register through.
      config->peers = {{config->node_id, config->advertise.empty() ? config->listen : config->advertise}};
    } else {
      config->join = true;
    }
  }
  if (config->peers.empty()) {
    // A joining node without seeds cannot register itself: it waits for an operator (or an
    // admin) to add it through a member's POST /admin/members. That is how an operator-managed
    // node starts once its cluster exists: no node may bootstrap any more, not even one whose disk
    // came back empty.
    if (!config->join) config->peers[config->node_id] = config->listen;
  }
  DISPOTIFY_RETURN_IF_ERROR(ReadSecretFile("api_token", config->api_token_file, &config->api_token));
  DISPOTIFY_RETURN_IF_ERROR(
      ReadSecretFile("admin_password", config->admin_password_file, &config->admin_password));
  DISPOTIFY_RETURN_IF_ERROR(ReadSecretFile("postgres_url", config->postgres_url_file, &config->postgres_url));
  if (!config->oidc_issuer.empty()) {
    // The issuer is compared byte for byte with each token's iss and names where the keys are:
    // only an http(s) URL can be both (OpenID Connect Discovery, section 4).
    const std::string& issuer = config->oidc_issuer;
    const bool http = issuer.rfind("http://", 0) == 0 || issuer.rfind("https://", 0) == 0;
    const size_t host = issuer.find("://") + 3;
    if (!http || host >= issuer.size() || issuer[host] == '/' ||
        issuer.find_first_of(" ?#") != std::string::npos)
      return Status::InvalidArgument("oidc_issuer: '" + issuer +
                                     "' is not an http(s) URL without query or fragment");
    // Without an audience any token of the issuer, minted for any of its clients, would do.
    if (config->oidc_audience.empty())
      return Status::InvalidArgument("oidc_issuer needs oidc_audience (the aud our tokens carry)");
    if (config->oidc_roles_claim.empty())
      return Status::InvalidArgument("oidc_roles_claim: must name a claim (default roles)");
    if (!config->auth) return Status::InvalidArgument("oidc_issuer needs auth: true");
  }
  if (!config->oidc_client_id.empty()) {
    if (config->oidc_issuer.empty()) return Status::InvalidArgument("oidc_client_id needs oidc_issuer");
    // The issuer sends the browser back here with the code: it must be this cluster's callback,
    // and registered at the issuer as it is written.
    const std::string& uri = config->oidc_redirect_uri;
    const bool http = uri.rfind("http://", 0) == 0 || uri.rfind("https://", 0) == 0;
    if (!http || uri.find('#') != std::string::npos)
      return Status::InvalidArgument(
          "oidc_client_id needs oidc_redirect_uri, the http(s) URL of "
          "/auth/oidc/callback as browsers reach it");
  }
  DISPOTIFY_RETURN_IF_ERROR(
      ReadSecretFile("oidc_client_secret", config->oidc_client_secret_file, &config->oidc_client_secret));
  if (config->http_tls_cert_file.empty() != config->http_tls_key_file.empty()) {
    return Status::InvalidArgument(
        "incomplete HTTPS configuration: http_tls_cert_file and http_tls_key_file go together (set both "
        "for HTTPS on http_listen, or neither for plaintext HTTP)");
  }
  if (!config->http_tls_client_ca_file.empty() && config->http_tls_cert_file.empty()) {
    return Status::InvalidArgument(
        "http_tls_client_ca_file needs http_tls_cert_file and http_tls_key_file (client certificates are "
        "asked for only over HTTPS)");
  }
  if (config->metadata_store == "postgres" && config->postgres_url.empty())
    return Status::InvalidArgument("metadata_store: postgres needs postgres_url (a libpq connection string)");
  if (!config->join && !config->peers.contains(config->node_id)) {
    return Status::InvalidArgument("--peers must include this node (" +
                                   std::to_string(config->node_id.value()) + ") unless --join is given");
  }
  return Status::Ok();
}

Status CheckGrpcSecurity(const NodeConfig& config) {
  if (config.insecure_grpc) return Status::Ok();
  const bool any =
      !config.tls_cert_file.empty() || !config.tls_key_file.empty() || !config.tls_ca_file.empty();
  const bool all =
      !config.tls_cert_file.empty() && !config.tls_key_file.empty() && !config.tls_ca_file.empty();
  if (all) return Status::Ok();
  return Status::InvalidArgument(
      std::string(any ? "incomplete TLS configuration: " : "no TLS configuration: ") +
      "node-to-node gRPC needs mutual TLS; set tls_cert_file, tls_key_file and tls_ca_file (this node's "
      "certificate, its key and the cluster CA; `dispotify-pki` makes them), or set insecure_grpc: true "
      "to run plaintext gRPC (not for a network anyone else can reach)");
}

Result<NodeConfig> LoadConfig(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env) {
  NodeConfig config;
  const auto& setters = Setters();

  // Collect the flags first: --config must be known before anything else applies.
  std::vector<std::pair<std::string, std::string>> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) return Status::InvalidArgument("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::string key = FlagToKey(name);
    if (key == "help" || key == "reset" || key == "join") {
      if (!value) value = "true";
    } else if (!value) {
      if (i + 1 >= args.size()) return Status::InvalidArgument("--" + name + " needs a value");
      value = args[++i];
    }
    if (key != "help" && key != "reset" && key != "config" && !setters.contains(key)) {
      return Status::InvalidArgument("unknown flag --" + name + " (see --help)");
    }
    flags.emplace_back(key, *value);
  }

  for (const auto& [key, value] : flags) {
    if (key == "config") config.config_file = value;
  }
  if (config.config_file.empty()) {
    if (auto it = env.find("DISPOTIFY_CONFIG"); it != env.end()) config.config_file = it->second;
  }
  if (!config.config_file.empty()) {
    std::ifstream in(config.config_file);
    if (!in) return Status::InvalidArgument("cannot read the configuration file " + config.config_file);
    std::stringstream buf;
    buf << in.rdbuf();
    Status st = ApplyYaml(buf.str(), &config);
    if (!st.ok()) return Status::InvalidArgument(config.config_file + ": " + st.message());
  }

  for (const auto& [key, setter] : setters) {
    std::string var = "DISPOTIFY_";
    for (char ch : key) var.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    auto it = env.find(var);
    if (it == env.end()) continue;
    Status st = setter(&config, it->second);
    if (!st.ok()) return Status::InvalidArgument(var + ": " + st.message());
  }

  for (const auto& [key, value] : flags) {
    if (key == "config") continue;
    if (key == "help" || key == "reset") {
      bool b = false;
      DISPOTIFY_RETURN_IF_ERROR(ParseBool("--" + key, value, &b));
      (key == "help" ? config.help : config.reset) = b;
      continue;
    }
    Status st = setters.at(key)(&config, value);
    if (!st.ok()) return Status::InvalidArgument("--" + st.message());
  }
  if (config.help) return config;
  DISPOTIFY_RETURN_IF_ERROR(Validate(&config));
  return config;
}

std::vector<std::string> ResolveSeeds(const std::vector<std::string>& seeds) {
  std::vector<std::string> out;
  for (const std::string& seed : seeds) {
    const size_t colon = seed.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      out.push_back(seed);
      continue;
    }
    std::string host = seed.substr(0, colon);
    const std::string port = seed.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      out.push_back(seed);
      continue;
    }
    const size_t first = out.size();
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      char ip[INET6_ADDRSTRLEN] = {};
      std::string addr;
      if (ai->ai_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, ip, sizeof(ip));
        addr = std::string(ip) + ":" + port;
      } else if (ai->ai_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, ip, sizeof(ip));
        addr = "[" + std::string(ip) + "]:" + port;
      } else {
        continue;
      }
      if (std::find(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(), addr) == out.end())
        out.push_back(std::move(addr));
    }
    ::freeaddrinfo(res);
    if (out.size() == first) out.push_back(seed);
  }
  return out;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("DISPOTIFY_", 0) != 0) continue;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::vector<std::string> ConfigKeys() {
  std::vector<std::string> keys;
  for (const auto& [key, setter] : Setters()) keys.push_back(key);
  return keys;
}

std::string UsageText() {
  return R"(usage: dispotify-node [flags]
       dispotify-node probe URL [--timeout-ms N]   GET URL once: exit 0 on 2xx, else 1 (health checks)
  --config FILE            YAML configuration (keys as below, with '_' for '-')
  --node-id N              this server's Raft id (default 1)
  --pod-ordinal N          a StatefulSet pod's index: the node id is N + 1 (default -1: unset);
                           an explicit --node-id must agree
  --cluster-id STR         cluster identity stamped on the data dir (default dispotify-local)
  --data-dir DIR           (default ./dispotify-data)
  --listen HOST:PORT       gRPC for Raft and the KV service (default 127.0.0.1:7001)
  --peers ID=HOST:PORT,... initial voters including this node (default: this node alone);
                           with --join: the addresses of current members
  --join                   start empty and wait to be added by the leader: registers through
                           --peers, or without them waits for an operator (POST /admin/members)
  --bootstrap-node-id N    the node with id N starts a one-member cluster when its data dir is
                           empty; every other node starts as with --join, --peers optional
                           (default 0: off). A data dir with Raft state always resumes
  --metrics-listen H:P     Prometheus /metrics (default 127.0.0.1:0, the port is logged)
  --tick-ms N              Raft tick (default 50)
  --election-ticks N       election timeout in ticks (default 6)
  --snapshot-entries N     snapshot every N applied entries (default 100000)
  --log-level LEVEL        debug | info | warning | error (default info)
  --advertise HOST:PORT    the address peers use for this node (default: --listen)
  --state-machine NAME     catalog (the music store, default) | kv (consensus tests, benchmark)
  --metadata-store NAME    embedded (SQLite in the data dir, default) | postgres
  --postgres-url STR       libpq connection string of this node's database (with postgres)
  --postgres-url-file FILE read the connection string from FILE (a secret; one per member on
                           Kubernetes, docs/operator.md); not both
  --http-listen H:P        the REST API (default 127.0.0.1:8080; "" = off; port 0 picks one)
  --http-workers N         threads running REST handlers (default 64)
  --http-tls-cert-file FILE  HTTPS: the REST port speaks TLS only with this certificate (chain,
                           PEM) and the key below; both or neither; re-read when they change
  --http-tls-key-file FILE   the private key of --http-tls-cert-file (PEM)
  --http-tls-client-ca-file FILE  HTTPS with client certificates signed by this CA (default "":
                           none asked)
  --api-token STR          bearer token the admin API requires (default "": open)
  --api-token-file FILE    read the token from FILE (a Docker or Kubernetes secret); not both
  --max-upload-mib N       larger uploads get 413 (default 2048)
  --min-free-mib N         disk space blobs never use, room for metadata and the Raft log;
                           uploads that would go below get 507 (default 256)
  --replication-factor N   copies of every file on a new cluster (default 3)
  --repair-interval-ms N   the leader's repair/rebalance pass (default 2000)
  --repair-bytes-per-s N   throttle of repair copies (default 67108864; 0: none)
  --repair-concurrency N   repair copies in flight (default 2)
  --dead-after-s N         a member down this long gets no new copies; its files are copied
                           elsewhere until it returns (default 600; 0: never)
  --scrub-interval-s N     every node re-hashes its blobs this often (default 3600; 0: never)
  --inventory-interval-ms N  orphan/missing sweep of the blob store (default 0: 30 s)
  --orphan-grace-ms N      age before an unreferenced blob is deleted (default 0: 15 min)
  --read-timeout-ms N      a linearizable read that cannot confirm the latest state with the
                           leader this fast answers 503 (default 2000)
  --upload-lock-ttl-ms N   lease of an upload on its file id, renewed while bytes flow
                           (default 15000)
  --auth BOOL              users, roles, tokens and sessions on every REST route (default
                           true; false: anyone may do anything, with a warning at every start)
  --admin-user NAME        with --auth: the first admin, created when the cluster has no user
                           (default admin)
  --admin-password-file FILE  that admin's password ("" = a generated one, logged once)
  --session-ttl-s N        browser sessions last this long (60 .. 2592000, default 43200)
  --secure-cookies BOOL    the session cookie's Secure attribute (default true; false only for
                           plain http on loopback)
  --audit-retention-days N audit entries older than this are dropped (default 365; 0: kept)
  --audit-max-entries N    and beyond this many, the oldest (default 1000000; 0: no limit)
  --oidc-issuer URL        with --auth: also accept JWT bearer tokens of this OpenID Connect
                           issuer (default "": off; docs/security.md, "OIDC")
  --oidc-audience STR      the aud those tokens must carry (required with --oidc-issuer)
  --oidc-roles-claim NAME  the claim holding the roles (default roles; a dotted path works)
  --oidc-leeway-s N        clock skew allowed on exp/nbf/iat (default 60)
  --oidc-client-id ID      with --oidc-issuer: the browser login through the issuer
                           (/auth/oidc/login, Authorization Code with PKCE) as this client
  --oidc-client-secret-file FILE  that client's secret ("" = a public client)
  --oidc-redirect-uri URL  /auth/oidc/callback as browsers reach it (required with the client id)
  --oidc-scopes STR        the scopes asked for at login (default openid)
  --web-root DIR           the web UI's built files, served at / (default auto: installed beside
                           the executable or the source tree's web/dist; "" = no UI)
  --auto-promote BOOL      the leader promotes caught-up learners by itself (default false)
  --encryption-keyring-file FILE
                           encryption at rest: seal new blobs under the last key of FILE (lines
                           <id>:<base64 of 32 bytes>, mode 0600; docs/security.md; default "": off)
  --reset-removed BOOL     wipe a data dir marked as a removed member at start and join as a new
                           incarnation, instead of refusing to start (default false)
  --force-new-cluster TOKEN
                           quorum-loss recovery: go on alone from this data dir as the only
                           member, once per TOKEN (docs/operator.md, "Quorum loss"; default "")
  --force-new-cluster-node N
                           only the node with id N acts on --force-new-cluster (default 0: any)
  --tls-cert-file FILE     this node's certificate (PEM), for mTLS on every gRPC server and
  --tls-key-file FILE      channel; its key; the cluster CA. Re-read on change (rotation). All
  --tls-ca-file FILE       three are required unless --insecure-grpc
  --tls-poll-interval-ms N how often the TLS files are looked at (default 10000)
  --insecure-grpc BOOL     plaintext gRPC, no peer checks; logs a WARNING (default false)
  --reset                  wipe the data dir of a removed member, then exit
Every key can also be set as DISPOTIFY_<KEY> (e.g. DISPOTIFY_NODE_ID=2); flags win over the
environment, which wins over the file.
Exit codes: 0 stopped, 2 bad configuration, 3 data dir of another cluster/node, 4 removed member,
5 storage failure.
)";
}

}  // namespace dispotify::server
