#include "node/server/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

namespace dispotify::server {
namespace {

TEST(ConfigTest, DefaultsStartOneNodeCluster) {
  auto c = LoadConfig({}, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, NodeId(1));
  EXPECT_EQ(c->cluster_id, "dispotify-local");
  EXPECT_EQ(c->data_dir, "./dispotify-data");
  EXPECT_EQ(c->listen, "127.0.0.1:7001");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:0");
  EXPECT_EQ(c->tick_ms, 50);
  EXPECT_EQ(c->election_ticks, 6);
  EXPECT_EQ(c->snapshot_entries, 100000u);
  ASSERT_EQ(c->peers.size(), 1u);
  EXPECT_EQ(c->peers.at(NodeId(1)), "127.0.0.1:7001");
  EXPECT_FALSE(c->join);
}

TEST(ConfigTest, WebRootIsAutoByDefaultAndEmptyTurnsTheUiOff) {
  auto c = LoadConfig({}, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->web_root, "auto");
  auto off = LoadConfig({"--web-root="}, {});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->web_root, "");
  auto env = LoadConfig({}, {{"DISPOTIFY_WEB_ROOT", "/srv/ui"}});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->web_root, "/srv/ui");
}

TEST(ConfigTest, FlagsInBothForms) {
  auto c = LoadConfig({"--node-id", "2", "--peers=1=127.0.0.1:7001,2=127.0.0.1:7002", "--listen",
                       "127.0.0.1:7002", "--tick-ms=20", "--join"},
                      {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, NodeId(2));
  EXPECT_EQ(c->tick_ms, 20);
  EXPECT_TRUE(c->join);
  EXPECT_EQ(c->peers.size(), 2u);
}

TEST(ConfigTest, YamlThenEnvThenFlags) {
  std::string path = ::testing::TempDir() + "/dispotify-config-test.yaml";
  {
    std::ofstream out(path);
    out << "node_id: 3\ncluster_id: from-yaml\ntick_ms: 30\nelection_ticks: 8\n"
           "peers:\n  1: 127.0.0.1:7001\n  3: 127.0.0.1:7003\n";
  }
  auto c = LoadConfig(
      {"--config", path, "--tick-ms", "40"},
      {{"DISPOTIFY_TICK_MS", "35"}, {"DISPOTIFY_CLUSTER_ID", "from-env"}, {"DISPOTIFY_UNRELATED", "x"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, NodeId(3));
  EXPECT_EQ(c->cluster_id, "from-env");
  EXPECT_EQ(c->tick_ms, 40);
  EXPECT_EQ(c->election_ticks, 8);
  EXPECT_EQ(c->peers.size(), 2u);
  std::remove(path.c_str());
}

TEST(ConfigTest, BadYamlGivesLineAndColumn) {
  NodeConfig c;
  Status st = ApplyYaml("node_id: 1\npeers: [1, 2\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("invalid YAML at line"), std::string::npos) << st.message();
}

TEST(ConfigTest, UnknownKeyAndBadValuesAreErrors) {
  NodeConfig c;
  Status st = ApplyYaml("tick_msec: 10\n", &c);
  EXPECT_NE(st.message().find("unknown key 'tick_msec' at line 1"), std::string::npos) << st.message();
  st = ApplyYaml("tick_ms: fast\n", &c);
  EXPECT_NE(st.message().find("not an integer"), std::string::npos) << st.message();
  st = ApplyYaml("- a\n- b\n", &c);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(ApplyYaml("", &c).ok());

  EXPECT_FALSE(LoadConfig({"--bogus", "1"}, {}).ok());
  EXPECT_FALSE(LoadConfig({"--node-id"}, {}).ok());
  EXPECT_FALSE(LoadConfig({"--node-id", "0"}, {}).ok());
  EXPECT_FALSE(LoadConfig({"--listen", "nohostport"}, {}).ok());
  EXPECT_FALSE(LoadConfig({"--log-level", "loud"}, {}).ok());
  EXPECT_FALSE(LoadConfig({}, {{"DISPOTIFY_ELECTION_TICKS", "1"}}).ok());
  auto missing = LoadConfig({"--config", "/nonexistent/dispotify.yaml"}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read the configuration file"), std::string::npos);
}

TEST(ConfigTest, HelpListsEveryKeyAsAFlag) {
  const std::string usage = UsageText();
  const std::vector<std::string> keys = ConfigKeys();
  EXPECT_GE(keys.size(), 25u);
  for (std::string key : keys) {
    std::replace(key.begin(), key.end(), '_', '-');
    EXPECT_NE(usage.find("  --" + key + " "), std::string::npos) << "--help does not explain --" << key;
  }
}

TEST(ConfigTest, GrpcIsSecureByDefault) {
  // Nothing set: refused, naming the three files and the flag.
  auto bare = LoadConfig({}, {});
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_FALSE(bare->insecure_grpc);
  Status none = CheckGrpcSecurity(*bare);
  ASSERT_FALSE(none.ok());
  for (const char* key : {"tls_cert_file", "tls_key_file", "tls_ca_file", "insecure_grpc"})
    EXPECT_NE(none.message().find(key), std::string::npos) << key << " not named in: " << none.message();
  // Two of three: still refused.
  auto partial = LoadConfig({"--tls-cert-file", "a.crt", "--tls-key-file", "a.key"}, {});
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(CheckGrpcSecurity(*partial).ok());
  // All three (file, env and flag alike), or the explicit opt-out: accepted.
  auto all = LoadConfig({"--tls-cert-file", "a.crt", "--tls-key-file", "a.key"},
                        {{"DISPOTIFY_TLS_CA_FILE", "ca.crt"}});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(CheckGrpcSecurity(*all).ok());
  EXPECT_EQ(all->tls_ca_file, "ca.crt");
  auto insecure = LoadConfig({}, {{"DISPOTIFY_INSECURE_GRPC", "true"}});
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE(CheckGrpcSecurity(*insecure).ok());
  NodeConfig yaml;
  ASSERT_TRUE(ApplyYaml("insecure_grpc: true\ntls_poll_interval_ms: 250\n", &yaml).ok());
  EXPECT_TRUE(yaml.insecure_grpc);
  EXPECT_EQ(yaml.tls_poll_interval_ms, 250);
  EXPECT_FALSE(LoadConfig({"--tls-poll-interval-ms", "0"}, {}).ok());
}

TEST(ConfigTest, ApiTokenFromASecretFile) {
  const std::string path = ::testing::TempDir() + "/dispotify-api-token-" + std::to_string(::getpid());
  std::ofstream(path) << "s3cret\n";  // as `echo s3cret > file` or a Swarm secret leaves it
  auto c = LoadConfig({}, {{"DISPOTIFY_API_TOKEN_FILE", path}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->api_token, "s3cret");

  auto both = LoadConfig({"--api-token", "x", "--api-token-file", path}, {});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("set only one"), std::string::npos) << both.status().ToString();

  std::ofstream(path) << " \n";  // an empty secret must not leave the admin API open
  auto empty = LoadConfig({"--api-token-file", path}, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos) << empty.status().ToString();
  std::remove(path.c_str());

  auto missing = LoadConfig({"--api-token-file", path}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read"), std::string::npos) << missing.status().ToString();
}

TEST(ConfigTest, PostgresUrlFromASecretFile) {
  // The operator gives each pod DISPOTIFY_POSTGRES_URL_FILE: its own member's key of the Secret.
  const std::string path = ::testing::TempDir() + "/dispotify-pg-url-" + std::to_string(::getpid());
  std::ofstream(path) << "postgresql://music@db-0/music\n";
  auto c = LoadConfig({"--metadata-store", "postgres"}, {{"DISPOTIFY_POSTGRES_URL_FILE", path}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->postgres_url, "postgresql://music@db-0/music");
  auto both = LoadConfig({"--postgres-url", "x", "--postgres-url-file", path}, {});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("postgres_url and postgres_url_file"), std::string::npos);
  std::remove(path.c_str());
  auto missing = LoadConfig({"--metadata-store", "postgres", "--postgres-url-file", path}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("postgres_url_file: cannot read"), std::string::npos);
}

TEST(ConfigTest, SeedsResolveToEachAddressInTurn) {
  // An address is itself; a name gives its addresses; what does not resolve stays for gRPC to
  // report.
  EXPECT_EQ(ResolveSeeds({"127.0.0.1:7001", "[::1]:7002"}),
            (std::vector<std::string>{"127.0.0.1:7001", "[::1]:7002"}));
  const auto local = ResolveSeeds({"localhost:7003"});
  ASSERT_FALSE(local.empty());
  EXPECT_NE(std::find(local.begin(), local.end(), "127.0.0.1:7003"), local.end());
  for (const auto& a : local) EXPECT_TRUE(a == "127.0.0.1:7003" || a == "[::1]:7003") << a;
  EXPECT_EQ(ResolveSeeds({"no-such-host.invalid:7001"}),
            (std::vector<std::string>{"no-such-host.invalid:7001"}));
}

TEST(ConfigTest, PeersMustIncludeSelfUnlessJoining) {
  EXPECT_FALSE(LoadConfig({"--node-id", "4", "--peers", "1=127.0.0.1:7001"}, {}).ok());
  EXPECT_TRUE(LoadConfig({"--node-id", "4", "--peers", "1=127.0.0.1:7001", "--join"}, {}).ok());
  // No seeds: it waits for an operator to add it through a member's admin API.
  EXPECT_TRUE(LoadConfig({"--join"}, {}).ok());
  EXPECT_FALSE(ParsePeers("1=a:1,1=b:2").ok());
  EXPECT_FALSE(ParsePeers("x=a:1").ok());
  auto p = ParsePeers("1=127.0.0.1:7001,2=127.0.0.1:7002");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at(NodeId(2)), "127.0.0.1:7002");
}

TEST(ConfigTest, PodOrdinalGivesTheNodeId) {
  auto c = LoadConfig({}, {{"DISPOTIFY_POD_ORDINAL", "2"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, NodeId(3));
  EXPECT_EQ(c->pod_ordinal, 2);
  // The default peer list is built for the derived id.
  ASSERT_EQ(c->peers.size(), 1u);
  EXPECT_TRUE(c->peers.contains(NodeId(3)));

  auto zero = LoadConfig({"--pod-ordinal", "0"}, {});
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(zero->node_id, NodeId(1));

  // Unset (-1, the default) leaves node_id alone.
  auto unset = LoadConfig({"--node-id", "5", "--pod-ordinal=-1"}, {});
  ASSERT_TRUE(unset.ok()) << unset.status().ToString();
  EXPECT_EQ(unset->node_id, NodeId(5));

  // An explicit node_id that agrees is fine, one that does not is an error naming both.
  auto agree = LoadConfig({"--node-id", "3"}, {{"DISPOTIFY_POD_ORDINAL", "2"}});
  ASSERT_TRUE(agree.ok()) << agree.status().ToString();
  EXPECT_EQ(agree->node_id, NodeId(3));
  auto clash = LoadConfig({"--node-id", "1"}, {{"DISPOTIFY_POD_ORDINAL", "2"}});
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("node_id 1 contradicts pod_ordinal 2"), std::string::npos)
      << clash.status().message();
  EXPECT_FALSE(LoadConfig({"--pod-ordinal", "-2"}, {}).ok());
  EXPECT_FALSE(LoadConfig({"--pod-ordinal", "x"}, {}).ok());
}

TEST(ConfigTest, BootstrapNodeStartsAOneMemberCluster) {
  // The pod contract (docs/operator.md): the bootstrap node's peers are itself at its advertised
  // address, whatever `peers` says (the joiners' seeds).
  auto c = LoadConfig({"--bootstrap-node-id", "1", "--peers", "2=10.0.0.2:7000"},
                      {{"DISPOTIFY_POD_ORDINAL", "0"},
                       {"DISPOTIFY_LISTEN", "10.0.0.1:7000"},
                       {"DISPOTIFY_ADVERTISE", "music-0.music-peers.ns.svc.cluster.local:7000"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, NodeId(1));
  EXPECT_FALSE(c->join);
  ASSERT_EQ(c->peers.size(), 1u);
  EXPECT_EQ(c->peers.at(NodeId(1)), "music-0.music-peers.ns.svc.cluster.local:7000");

  // Without advertise, the listen address.
  auto plain = LoadConfig({"--bootstrap-node-id", "2", "--node-id", "2", "--listen", "127.0.0.1:7002"}, {});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->join);
  ASSERT_EQ(plain->peers.size(), 1u);
  EXPECT_EQ(plain->peers.at(NodeId(2)), "127.0.0.1:7002");

  // Asking the bootstrap node to join is a contradiction.
  auto clash = LoadConfig({"--bootstrap-node-id", "1", "--join"}, {});
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("contradicts bootstrap_node_id 1"), std::string::npos)
      << clash.status().message();
}

TEST(ConfigTest, OtherNodesJoinWhenABootstrapNodeIsSet) {
  // No peers needed: an operator adds the node through the admin API.
  auto c = LoadConfig({}, {{"DISPOTIFY_POD_ORDINAL", "1"}, {"DISPOTIFY_BOOTSTRAP_NODE_ID", "1"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, NodeId(2));
  EXPECT_TRUE(c->join);
  EXPECT_TRUE(c->peers.empty());

  // With peers they are the seeds it registers through, as with a plain --join.
  auto seeded = LoadConfig({"--node-id", "3", "--bootstrap-node-id", "1", "--peers", "1=127.0.0.1:7001"}, {});
  ASSERT_TRUE(seeded.ok()) << seeded.status().ToString();
  EXPECT_TRUE(seeded->join);
  ASSERT_EQ(seeded->peers.size(), 1u);
  EXPECT_EQ(seeded->peers.at(NodeId(1)), "127.0.0.1:7001");

  // The same YAML file (one ConfigMap for every pod) gives each pod its role.
  std::string path = ::testing::TempDir() + "/dispotify-bootstrap-test.yaml";
  {
    std::ofstream out(path);
    out << "bootstrap_node_id: 1\nreplication_factor: 3\n";
  }
  for (int ordinal = 0; ordinal < 3; ++ordinal) {
    auto pod = LoadConfig({"--config", path}, {{"DISPOTIFY_POD_ORDINAL", std::to_string(ordinal)}});
    ASSERT_TRUE(pod.ok()) << pod.status().ToString();
    EXPECT_EQ(pod->node_id, NodeId(static_cast<uint64_t>(ordinal) + 1));
    EXPECT_EQ(pod->join, ordinal != 0) << ordinal;
  }
  std::remove(path.c_str());

  // Once the cluster exists the operator writes join: true with no peers: the node waits to be
  // added, and never bootstraps (bootstrap_node_id 0 means "off", not "nobody").
  auto waiting = LoadConfig({"--join", "--bootstrap-node-id", "0", "--node-id", "4"}, {});
  ASSERT_TRUE(waiting.ok()) << waiting.status().ToString();
  EXPECT_TRUE(waiting->join);
  EXPECT_TRUE(waiting->peers.empty());
}

TEST(ConfigTest, ForceNewClusterIsATokenForOneNodeOrAny) {
  auto c = LoadConfig({"--node-id", "2", "--force-new-cluster", "r-1", "--force-new-cluster-node", "2"}, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->force_new_cluster, "r-1");
  EXPECT_EQ(c->force_new_cluster_node, NodeId(2));
  EXPECT_FALSE(LoadConfig({"--force-new-cluster-node", "x"}, {}).ok());
  EXPECT_FALSE(LoadConfig({"--force-new-cluster", std::string(200, 'x')}, {}).ok());
}

TEST(ConfigTest, HttpsNeedsCertificateAndKeyTogether) {
  auto plain = LoadConfig({}, {});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->http_tls_cert_file, "");
  auto https = LoadConfig({"--http-tls-cert-file", "api.crt"}, {{"DISPOTIFY_HTTP_TLS_KEY_FILE", "api.key"}});
  ASSERT_TRUE(https.ok()) << https.status().ToString();
  EXPECT_EQ(https->http_tls_cert_file, "api.crt");
  EXPECT_EQ(https->http_tls_key_file, "api.key");
  EXPECT_EQ(https->http_tls_client_ca_file, "");
  for (const std::vector<std::string>& half :
       {std::vector<std::string>{"--http-tls-cert-file", "api.crt"}, {"--http-tls-key-file", "api.key"}}) {
    auto c = LoadConfig(half, {});
    ASSERT_FALSE(c.ok()) << half[0];
    EXPECT_NE(c.status().message().find("http_tls_cert_file and http_tls_key_file go together"),
              std::string::npos)
        << c.status().ToString();
  }
  auto ca_alone = LoadConfig({"--http-tls-client-ca-file", "clients.crt"}, {});
  ASSERT_FALSE(ca_alone.ok());
  EXPECT_NE(ca_alone.status().message().find("http_tls_client_ca_file needs"), std::string::npos);
}

TEST(ConfigTest, OidcNeedsAuthAnAudienceAndAnHttpIssuer) {
  auto off = LoadConfig({}, {});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->oidc_issuer, "");
  EXPECT_EQ(off->oidc_roles_claim, "roles");

  auto on =
      LoadConfig({"--auth", "true", "--oidc-issuer", "https://id.example.com/realms/x", "--oidc-audience",
                  "dispotify", "--oidc-roles-claim", "realm_access.roles", "--oidc-leeway-s", "30"},
                 {});
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_EQ(on->oidc_issuer, "https://id.example.com/realms/x");
  EXPECT_EQ(on->oidc_audience, "dispotify");
  EXPECT_EQ(on->oidc_roles_claim, "realm_access.roles");
  EXPECT_EQ(on->oidc_leeway_s, 30);

  auto refused = [](const std::vector<std::string>& args, const std::string& why) {
    auto c = LoadConfig(args, {});
    ASSERT_FALSE(c.ok()) << why;
    EXPECT_NE(c.status().message().find(why), std::string::npos) << c.status().ToString();
  };
  refused({"--auth", "true", "--oidc-issuer", "https://id.example.com"}, "needs oidc_audience");
  refused({"--auth", "false", "--oidc-issuer", "https://id.example.com", "--oidc-audience", "d"},
          "needs auth: true");
  refused({"--auth", "true", "--oidc-issuer", "id.example.com", "--oidc-audience", "d"},
          "not an http(s) URL");
  refused({"--auth", "true", "--oidc-issuer", "ftp://id.example.com", "--oidc-audience", "d"},
          "not an http(s) URL");
  refused({"--auth", "true", "--oidc-issuer", "https://", "--oidc-audience", "d"}, "not an http(s) URL");
  refused({"--auth", "true", "--oidc-issuer", "https://x?a=b", "--oidc-audience", "d"}, "not an http(s) URL");
  refused({"--oidc-leeway-s", "601"}, "oidc_leeway_s");

  const std::vector<std::string> base = {"--auth",          "true", "--oidc-issuer", "https://id.example.com",
                                         "--oidc-audience", "d"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), base.begin(), base.end());
    return more;
  };
  auto login = LoadConfig(
      with({"--oidc-client-id", "web", "--oidc-redirect-uri", "https://music.example/auth/oidc/callback"}),
      {});
  ASSERT_TRUE(login.ok()) << login.status().ToString();
  EXPECT_EQ(login->oidc_client_id, "web");
  EXPECT_EQ(login->oidc_scopes, "openid");
  EXPECT_EQ(login->oidc_client_secret, "");
  refused(with({"--oidc-client-id", "web"}), "needs oidc_redirect_uri");
  refused(with({"--oidc-client-id", "web", "--oidc-redirect-uri", "/auth/oidc/callback"}),
          "needs oidc_redirect_uri");
  refused({"--auth", "true", "--oidc-client-id", "web", "--oidc-redirect-uri", "https://m.example/cb"},
          "needs oidc_issuer");
}

}  // namespace
}  // namespace dispotify::server
