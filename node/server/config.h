#pragma once
// The node's configuration. Sources, lowest precedence first: built-in defaults, the YAML file
// (--config FILE or DISPOTIFY_CONFIG), environment variables DISPOTIFY_<KEY>, command-line flags
// --<key>. Every knob has a default, so `dispotify-node` alone starts a one-node cluster in
// ./dispotify-data.
//
// YAML keys (and flags, with '-' for '_'; and env vars, upper case with the DISPOTIFY_ prefix):
//   node_id: 1                      # this server's Raft id (>= 1), stamped on the data dir
//   pod_ordinal: -1                 # >= 0: node_id = pod_ordinal + 1 (a StatefulSet pod's index,
//                                   # DISPOTIFY_POD_ORDINAL); an explicit node_id must agree
//   cluster_id: dispotify-local     # a node refuses a data dir stamped by another cluster
//   data_dir: ./dispotify-data
//   listen: 127.0.0.1:7001          # gRPC: Raft transport, Cluster, Replication, Files (KV)
//   peers: "1=127.0.0.1:7001,2=127.0.0.1:7002"   # or a map {1: addr, 2: addr}
//                                   # initial voters incl. self; with join: addresses to reach
//   join: false                     # start empty and wait to be added by the leader (through
//                                   # the peers given, or by an operator when there are none)
//   bootstrap_node_id: 0            # 0: off (peers/join decide). Else the node with this id
//                                   # starts a one-member cluster {self} when its data dir is
//                                   # empty, and every other node starts as with join: true (peers
//                                   # optional: without them it waits for an operator to add it).
//                                   # A data dir with Raft state always resumes, whatever the mode.
//   force_new_cluster: ""           # quorum-loss recovery (docs/operator.md, "Quorum loss"): a
//                                   # token; this node goes on alone from its data as the only
//                                   # member, once per token. The other members come back empty.
//   force_new_cluster_node: 0       # 0: any node given force_new_cluster. Else only the node with
//                                   # this id acts on it (one setting shared by every pod)
//   metrics_listen: 127.0.0.1:0     # Prometheus /metrics; port 0 picks one (logged)
//   tick_ms: 50
//   election_ticks: 6               # election timeout drawn from [6, 12) ticks
//   snapshot_entries: 100000        # snapshot + compact every N applied entries (etcd's default)
//   log_level: info                 # debug | info | warning | error
//   state_machine: catalog          # catalog (the music store) | kv (consensus tests, benchmark)
//   metadata_store: embedded        # embedded (SQLite in data_dir) | postgres
//   postgres_url: ""                # libpq connection string of this node's database
//   postgres_url_file: ""           # read postgres_url from this file instead (a secret)
//   replication_factor: 3           # R on a new cluster (later: the admin API changes it)
//   repair_interval_ms: 2000        # the leader's repair pass (bring files to R, trim, rebalance)
//   scrub_interval_s: 3600          # every node re-hashes its blobs this often (0: never)
//   repair_bytes_per_s: 67108864    # throttle of repair/rebalance copies started by the leader
//   repair_concurrency: 2           # copies in flight at once (new nodes fill progressively)
//   dead_after_s: 600               # a member down this long gets no new copies; its files are
//                                   # copied elsewhere until it returns (0: never)
//   auto_promote: false             # the leader promotes caught-up learners by itself
//   advertise: ""                   # the address peers use for this node (default: listen)
//   http_listen: 127.0.0.1:8080     # the REST API (catalog mode; "" = off; port 0 picks one)
//   http_workers: 64                # threads running REST handlers (a linearizable read waits
//                                   # in its thread for its read round: more threads, larger
//                                   # shared rounds)
//   http_tls_cert_file: ""          # HTTPS: http_listen speaks TLS only (1.2 minimum, 1.3
//   http_tls_key_file: ""           # preferred) with this certificate chain and key, PEM; both
//                                   # or neither; re-read when they change (every
//                                   # tls_poll_interval_ms), new connections get the new one
//   http_tls_client_ca_file: ""     # with the two above: clients must present a certificate
//                                   # this CA signed ("" = no client certificates asked)
//   max_upload_mib: 2048            # larger uploads get 413
//   min_free_mib: 256               # disk space blobs never use (metadata + Raft log room); 507
//   api_token: ""                   # bearer token of the admin API ("" = open)
//   api_token_file: ""              # read api_token from this file instead (a Docker/Kubernetes
//                                   # secret; trailing whitespace dropped); not both
//   inventory_interval_ms: 0        # the scrubber's orphan/missing sweep (0: 30 s)
//   orphan_grace_ms: 0              # age before an unreferenced blob is deleted (0: 15 min)
//   read_timeout_ms: 2000           # a linearizable read that cannot confirm the latest state
//                                   # with the leader this fast gets 503 + Retry-After
//   upload_lock_ttl_ms: 15000       # lease of an upload on its file id, renewed while bytes flow
//   auth: true                      # users, roles, tokens and sessions on every REST route
//                                   # (docs/security.md); false: anyone may do anything (a
//                                   # warning is logged at every start)
//   admin_user: admin               # with auth: the first admin, created when the cluster has
//   admin_password_file: ""         # no user yet, with this file's password; "" = a generated
//                                   # one, logged once by the node that creates it
//   session_ttl_s: 43200            # browser sessions last this long (60 s .. 30 days)
//   secure_cookies: true            # the session cookie's Secure attribute (false only for plain
//                                   # http on loopback: browsers drop Secure cookies over http
//                                   # except on localhost)
//   audit_retention_days: 365       # with auth: audit entries older than this are dropped by
//   audit_max_entries: 1000000      # the leader, and beyond this many the oldest (0 = no limit);
//                                   # the chain stays verifiable (docs/security.md, "Audit log")
//   oidc_issuer: ""                 # with auth: also accept JWT bearer tokens from this OpenID
//                                   # Connect issuer (an http(s) URL, exactly as the tokens' iss;
//                                   # its keys come from <issuer>/.well-known/openid-configuration);
//                                   # "" = off
//   oidc_audience: ""               # the aud tokens must carry (required with oidc_issuer)
//   oidc_roles_claim: roles         # the claim (or dotted path, e.g. realm_access.roles) holding
//                                   # the caller's roles: an array or a space-separated string
//   oidc_leeway_s: 60               # clock skew allowed on exp, nbf and iat (0 .. 600)
//   oidc_client_id: ""              # the browser login through the issuer (Authorization Code
//                                   # with PKCE, /auth/oidc/login): our client at the issuer;
//                                   # "" = no such login (bearer tokens still work)
//   oidc_client_secret_file: ""     # its secret, if the issuer gave one ("" = a public client)
//   oidc_redirect_uri: ""           # /auth/oidc/callback as browsers reach it, exactly as
//                                   # registered at the issuer (required with oidc_client_id)
//   oidc_scopes: openid             # asked for at login (openid is always added)
//   web_root: auto                  # the web UI's built files, served at / (node/api/static_files.h):
//                                   # auto = share/dispotify/web beside the executable's bin/, or
//                                   # the source tree's web/dist above it; "" = no UI
//   encryption_keyring_file: ""     # encryption at rest ("" = off): a keyring file of
//                                   # <id>:<base64 of 32 bytes> lines, the last one current
//                                   # (node/replication/sealed_blob.h, docs/security.md), mode 0600
//                                   # or stricter. New blobs are sealed under the current key, old
//                                   # ones re-sealed in the background; read at start (a bad file
//                                   # stops the node), so a rotation takes a restart
//   tls_cert_file: ""              # mTLS of every gRPC server and channel (docs/security.md,
//   tls_key_file: ""               # "Node-to-node: mutual TLS"): this node's certificate (URI SAN
//   tls_ca_file: ""                # spiffe://dispotify/<cluster_id>/node/<node_id>), its key and
//                                   # the cluster CA, PEM; re-read when they change (rotation with
//                                   # no restart), a validated copy published to <data_dir>/tls
//   tls_poll_interval_ms: 10000    # how often the three files are looked at for a rotation
//   insecure_grpc: false           # true: plaintext gRPC, no peer checks (a WARNING at every
//                                   # start). Without it the node refuses to start unless all
//                                   # three tls_* files are set
// Flags only: --config FILE, --reset (wipe a removed member's data dir, then exit), --help.
// `dispotify-node probe URL` is not a configuration: main hands it to common/rest/probe.h.
// Unknown keys and flags are errors (a typo must not silently keep a default).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace dispotify::server {

struct NodeConfig {
  NodeId node_id{1};
  int64_t pod_ordinal = -1;  // -1: unset
  NodeId bootstrap_node_id;  // kNoNode: unset
  std::string cluster_id = "dispotify-local";
  std::string data_dir = "./dispotify-data";
  std::string listen = "127.0.0.1:7001";
  std::map<NodeId, std::string> peers;  // empty: this node alone, at `listen`
  bool join = false;
  // A data directory marked as a removed member is wiped at start instead of refused, and the node
  // joins as a new incarnation. For an operator that keeps volumes across a scale-down (its
  // members are drained before removal, so nothing on the volume is still needed).
  bool reset_removed = false;
  std::string force_new_cluster;  // "": off
  NodeId force_new_cluster_node;  // kNoNode: this node, whatever its id
  std::string metrics_listen = "127.0.0.1:0";
  int tick_ms = 50;
  int election_ticks = 6;
  uint64_t snapshot_entries = 100000;
  std::string log_level = "info";
  std::string state_machine = "catalog";
  std::string metadata_store = "embedded";
  std::string postgres_url;
  std::string postgres_url_file;  // read into postgres_url by Validate
  uint32_t replication_factor = 3;
  int repair_interval_ms = 2000;
  int scrub_interval_s = 3600;
  uint64_t repair_bytes_per_s = 64ull << 20;
  int repair_concurrency = 2;
  bool auto_promote = false;
  std::string advertise;
  std::string http_listen = "127.0.0.1:8080";
  int http_workers = 64;
  std::string http_tls_cert_file;
  std::string http_tls_key_file;
  std::string http_tls_client_ca_file;
  uint64_t max_upload_mib = 2048;
  uint64_t min_free_mib = 256;
  uint64_t dead_after_s = 600;
  std::string api_token;
  std::string api_token_file;  // read into api_token by Validate
  // "": encryption at rest off (the node loads the keyring).
  std::string encryption_keyring_file;
  int inventory_interval_ms = 0;
  int64_t orphan_grace_ms = 0;
  int read_timeout_ms = 2000;
  int upload_lock_ttl_ms = 15000;
  std::string web_root = "auto";
  bool auth = true;
  std::string admin_user = "admin";
  std::string admin_password_file;
  std::string admin_password;  // read from admin_password_file by Validate
  int64_t session_ttl_s = 43200;
  bool secure_cookies = true;
  int64_t audit_retention_days = 365;
  uint64_t audit_max_entries = 1'000'000;
  std::string oidc_issuer;  // "": OIDC off
  std::string oidc_audience;
  std::string oidc_roles_claim = "roles";
  int64_t oidc_leeway_s = 60;
  std::string oidc_client_id;  // "": no browser login through the issuer
  std::string oidc_client_secret_file;
  std::string oidc_client_secret;  // read from oidc_client_secret_file by Validate
  std::string oidc_redirect_uri;
  std::string oidc_scopes = "openid";
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  int tls_poll_interval_ms = 10000;
  bool insecure_grpc = false;

  bool node_id_set = false;  // node_id was given explicitly (file, env or flag), not defaulted
  bool reset = false;        // flag only
  bool help = false;         // flag only
  std::string config_file;
};

// Parses "1=host:port,2=host:port".
Result<std::map<NodeId, std::string>> ParsePeers(std::string_view text);
// The addresses a joining node tries to register through, from its seeds ("host:port"): each
// address a seed's name resolves to, as "ip:port" ("[ip6]:port"), in the order of the resolver,
// then the next seed. A name may stand for several nodes (Swarm's tasks.<service>, a headless
// Service), some of them joining like this one: trying one address at a time reaches a member
// whatever the order, where a channel to the name would keep picking the first. A seed that does
// not resolve (yet) is kept as it is, so the gRPC call says why it fails.
std::vector<std::string> ResolveSeeds(const std::vector<std::string>& seeds);
// Applies a YAML document on top of `config`.
Status ApplyYaml(std::string_view yaml_text, NodeConfig* config);
// Defaults <- YAML file <- env <- flags, then validated (peers defaulted to {self: listen}).
// `env` holds the process environment (only DISPOTIFY_* entries are looked at).
Result<NodeConfig> LoadConfig(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env);
Status Validate(NodeConfig* config);
// Secure by default: OK when the three tls_* files are set, or insecure_grpc is; otherwise the
// refusal naming them. Apart from Validate so that tools and tests reading a configuration need no
// certificates; Node::Start calls it.
Status CheckGrpcSecurity(const NodeConfig& config);
// The environment of this process, as LoadConfig takes it.
std::map<std::string, std::string> ProcessEnvironment();
std::string UsageText();
// Every configuration key ("node_id", ...), as the YAML file spells it.
std::vector<std::string> ConfigKeys();

}  // namespace dispotify::server
