#pragma once
// The node's configuration. Sources, lowest precedence first: built-in defaults, the YAML file
// (--config FILE or DISPOTIFY_CONFIG), environment variables DISPOTIFY_<KEY>, command-line flags
// --<key>. Every knob has a default, so `dispotify-node` alone starts a one-node cluster in
// ./dispotify-data.
//
// YAML keys (and flags, with '-' for '_'; and env vars, upper case with the DISPOTIFY_ prefix):
//   node_id: 1                      # this server's Raft id (>= 1), stamped on the data dir
//   cluster_id: dispotify-local     # a node refuses a data dir stamped by another cluster
//   data_dir: ./dispotify-data
//   listen: 127.0.0.1:7001          # gRPC: Raft transport + KV service
//   peers: "1=127.0.0.1:7001,2=127.0.0.1:7002"   # or a map {1: addr, 2: addr}
//                                   # initial voters incl. self; with join: addresses to reach
//   join: false                     # start empty and wait to be added by the leader
//   metrics_listen: 127.0.0.1:0     # Prometheus /metrics; port 0 picks one (logged)
//   tick_ms: 50
//   election_ticks: 6               # election timeout drawn from [6, 12) ticks
//   snapshot_entries: 100000        # snapshot + compact every N applied entries (etcd's default)
//   log_level: info                 # debug | info | warning | error
// Flags only: --config FILE, --reset (wipe a removed member's data dir, then exit), --help.
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
  std::string cluster_id = "dispotify-local";
  std::string data_dir = "./dispotify-data";
  std::string listen = "127.0.0.1:7001";
  std::map<NodeId, std::string> peers;  // empty: this node alone, at `listen`
  bool join = false;
  std::string metrics_listen = "127.0.0.1:0";
  int tick_ms = 50;
  int election_ticks = 6;
  uint64_t snapshot_entries = 100000;
  std::string log_level = "info";

  bool reset = false;  // flag only
  bool help = false;   // flag only
  std::string config_file;
};

// Parses "1=host:port,2=host:port".
Result<std::map<NodeId, std::string>> ParsePeers(std::string_view text);
// Applies a YAML document on top of `config`.
Status ApplyYaml(std::string_view yaml_text, NodeConfig* config);
// Defaults <- YAML file <- env <- flags, then validated (peers defaulted to {self: listen}).
// `env` holds the process environment (only DISPOTIFY_* entries are looked at).
Result<NodeConfig> LoadConfig(const std::vector<std::string>& args,
                              const std::map<std::string, std::string>& env);
Status Validate(NodeConfig* config);
// The environment of this process, as LoadConfig takes it.
std::map<std::string, std::string> ProcessEnvironment();
std::string UsageText();

}  // namespace dispotify::server
