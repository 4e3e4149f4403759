#include "operator/kube/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include "tests/mocks/temp_dir.h"

namespace dispotify::op::kube {
namespace {

using mocks::TempDir;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// "hello" in base64, and a PEM-looking text with its base64.
constexpr const char* kCaPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr const char* kCaPemBase64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

TEST(DecodeBase64, DecodesWithAndWithoutPaddingAndIgnoresLineBreaks) {
  EXPECT_EQ(*DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(*DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8=\n"), "hello");
  EXPECT_EQ(*DecodeBase64(""), "");
  EXPECT_EQ(*DecodeBase64(kCaPemBase64), kCaPem);
  EXPECT_EQ(DecodeBase64("aGVs*G8=").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBase64("aGVsbG8=x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBase64("a").status().code(), StatusCode::kInvalidArgument);
}

TEST(Kubeconfig, ReadsTheCurrentContextsClusterUserAndNamespace) {
  const std::string yaml = std::string(R"(
apiVersion: v1
kind: Config
current-context: work
clusters:
- name: other
  cluster:
    server: https://other:6443
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: )") +
                           kCaPemBase64 + R"(
users:
- name: admin
  user:
    token: abc123
contexts:
- name: play
  context: {cluster: other, user: admin}
- name: work
  context:
    cluster: prod
    user: admin
    namespace: music
)";
  auto c = ParseKubeconfig(yaml, "/nowhere");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->token, "abc123");
  EXPECT_TRUE(c->token_file.empty());
  EXPECT_EQ(c->ns, "music");
  EXPECT_FALSE(c->insecure_skip_tls_verify);

  // Another context by name; no namespace means "default".
  auto play = ParseKubeconfig(yaml, "/nowhere", "play");
  ASSERT_TRUE(play.ok()) << play.status().ToString();
  EXPECT_EQ(play->server, "https://other:6443");
  EXPECT_EQ(play->ns, "default");
  EXPECT_TRUE(play->ca_pem.empty());
}

TEST(Kubeconfig, ReadsFilesRelativeToTheKubeconfigAndClientCertificateData) {
  TempDir dir;
  WriteFile(dir.Sub("ca.crt"), kCaPem);
  WriteFile(dir.Sub("token"), "t0k3n\n");
  WriteFile(dir.Sub("config"), std::string(R"(
current-context: c
clusters:
- name: k
  cluster:
    server: https://127.0.0.1:1
    certificate-authority: ca.crt
users:
- name: u
  user:
    tokenFile: token
    client-certificate-data: )") + kCaPemBase64 +
                                   R"(
    client-key-data: aGVsbG8=
contexts:
- name: c
  context: {cluster: k, user: u}
)");
  auto c = LoadKubeconfig(dir.Sub("config"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->token_file, dir.Sub("token"));
  EXPECT_EQ(c->client_cert_pem, kCaPem);
  EXPECT_EQ(c->client_key_pem, "hello");
  EXPECT_NE(c->source.find(dir.Sub("config")), std::string::npos) << c->source;
  EXPECT_NE(c->source.find("context c"), std::string::npos) << c->source;
  TokenSource tokens(*c);
  EXPECT_EQ(*tokens.Token(), "t0k3n");
}

TEST(Kubeconfig, InsecureSkipTlsVerifyAndClientCertificateFiles) {
  TempDir dir;
  WriteFile(dir.Sub("client.crt"), "CERT");
  WriteFile(dir.Sub("client.key"), "KEY");
  auto c = ParseKubeconfig(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {client-certificate: client.crt, client-key: )" +
                               dir.Sub("client.key") + R"(}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)",
                           dir.path());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
}

// Each broken kubeconfig fails with a message naming what is wrong.
TEST(Kubeconfig, ErrorsNameWhatIsMissing) {
  struct Case {
    std::string yaml;
    StatusCode code;
    std::string says;
  };
  const std::string clusters = "clusters: [{name: k, cluster: {server: 'https://h:1'}}]\n";
  const std::string users = "users: [{name: u, user: {token: t}}]\n";
  const std::vector<Case> cases = {
      {"- just a list\n", StatusCode::kInvalidArgument, "not a YAML mapping"},
      {"a: [unclosed\n", StatusCode::kInvalidArgument, "not valid"},
      {clusters + users, StatusCode::kInvalidArgument, "no current-context"},
      {"current-context: nope\n" + clusters + users, StatusCode::kNotFound, "no context named \"nope\""},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: gone, user: u}}]\n" + clusters + users,
       StatusCode::kNotFound, "cluster \"gone\""},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: who}}]\n" + clusters + users,
       StatusCode::kNotFound, "user \"who\""},
      {"current-context: c\ncontexts: [{name: c, context: {user: u}}]\n" + clusters + users,
       StatusCode::kInvalidArgument, "names no cluster"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {certificate-authority-data: aGVsbG8=}}]\n" +
           users,
       StatusCode::kInvalidArgument, "has no server"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h:1', certificate-authority-data: "
       "'!!notbase64'}}]\n" +
           users,
       StatusCode::kInvalidArgument, "certificate-authority-data is not valid base64"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'https://h:1', certificate-authority: /no/such/ca.crt}}]\n" +
           users,
       StatusCode::kNotFound, "/no/such/ca.crt"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" + clusters +
           "users: [{name: u, user: {exec: {command: aws}}}]\n",
       StatusCode::kInvalidArgument, "\"exec\", which this client does not support"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" + clusters +
           "users: [{name: u, user: {client-certificate-data: aGVsbG8=}}]\n",
       StatusCode::kInvalidArgument, "certificate without a key"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" + clusters +
           "users: [{name: u, user: {tokenFile: /no/such/token}}]\n",
       StatusCode::kNotFound, "/no/such/token"},
      {"current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "clusters: [{name: k, cluster: {server: 'h:1'}}]\n" +
           users,
       StatusCode::kInvalidArgument, "not an http(s) URL"},
  };
  for (const auto& c : cases) {
    auto r = ParseKubeconfig(c.yaml, "/");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString() << "\n" << c.yaml;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().ToString() << "\n"
                                                                    << c.yaml;
  }
  auto missing = LoadKubeconfig("/no/such/kubeconfig");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/no/such/kubeconfig"), std::string::npos);
}

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(InCluster, ReadsTheServiceAccountAndTheServiceAddress) {
  TempDir dir;
  WriteFile(dir.Sub("token"), "sa-token\n");
  WriteFile(dir.Sub("ca.crt"), kCaPem);
  WriteFile(dir.Sub("namespace"), "music\n");
  auto c = LoadInCluster(dir.path(),
                         Env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, dir.Sub("token"));
  EXPECT_TRUE(c->token.empty());
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->ns, "music");
  EXPECT_EQ(c->source, "in-cluster");

  auto v6 = LoadInCluster(dir.path(),
                          Env({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->server, "https://[fd00::1]:443");
}

TEST(InCluster, ErrorsNameWhatIsMissing) {
  TempDir dir;
  const auto env = Env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  auto no_env = LoadInCluster(dir.path(), Env({}));
  EXPECT_EQ(no_env.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(no_env.status().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);

  auto no_token = LoadInCluster(dir.path(), env);
  EXPECT_EQ(no_token.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_token.status().message().find(dir.Sub("token")), std::string::npos)
      << no_token.status().ToString();

  WriteFile(dir.Sub("token"), "sa-token");
  auto no_ca = LoadInCluster(dir.path(), env);
  EXPECT_NE(no_ca.status().message().find(dir.Sub("ca.crt")), std::string::npos) << no_ca.status().ToString();

  WriteFile(dir.Sub("ca.crt"), kCaPem);
  auto no_ns = LoadInCluster(dir.path(), env);
  ASSERT_TRUE(no_ns.ok()) << no_ns.status().ToString();
  EXPECT_EQ(no_ns->ns, "default");
}

TEST(LoadDefault, PrefersKubeconfigThenInClusterThenHome) {
  TempDir dir;
  WriteFile(dir.Sub("a"), R"(
current-context: c
clusters: [{name: k, cluster: {server: 'https://from-a:1'}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  auto c =
      LoadDefault(Env({{"KUBECONFIG", dir.Sub("a") + ":" + dir.Sub("b")}, {"KUBERNETES_SERVICE_HOST", "x"}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://from-a:1");
  auto home = LoadDefault(Env({{"HOME", dir.path()}}));
  EXPECT_EQ(home.status().code(), StatusCode::kNotFound);
  EXPECT_NE(home.status().message().find(dir.path() + "/.kube/config"), std::string::npos);
}

TEST(TokenSource, ReReadsTheFileWhenItChanges) {
  TempDir dir;
  KubeConfig c;
  c.token_file = dir.Sub("token");
  TokenSource tokens(c);
  EXPECT_EQ(tokens.Token().status().code(), StatusCode::kNotFound);

  WriteFile(c.token_file, "first\n");
  EXPECT_EQ(*tokens.Token(), "first");
  // A rotation as the kubelet does it: a new file renamed over the old one.
  WriteFile(dir.Sub("token.new"), "second-token");
  ASSERT_EQ(::rename(dir.Sub("token.new").c_str(), c.token_file.c_str()), 0);
  EXPECT_EQ(*tokens.Token(), "second-token");
  // Gone for a moment: the last token still serves.
  ASSERT_EQ(::unlink(c.token_file.c_str()), 0);
  EXPECT_EQ(*tokens.Token(), "second-token");
  // A token cannot hold a line break (it goes into a header).
  WriteFile(c.token_file, "two\nlines");
  EXPECT_EQ(tokens.Token().status().code(), StatusCode::kInvalidArgument);
}

TEST(TokenSource, AFixedTokenOrNone) {
  KubeConfig c;
  EXPECT_EQ(*TokenSource(c).Token(), "");
  c.token = "fixed";
  EXPECT_EQ(*TokenSource(c).Token(), "fixed");
}

}  // namespace
}  // namespace dispotify::op::kube
