#pragma once
// Where the Kubernetes API server is and how to prove who we are: from a kubeconfig file (local
// runs, tests) or from the pod's service account (in-cluster), as client-go's clientcmd and
// rest.InClusterConfig read them.
//
// Kubeconfig: the current context (or the one named) picks a cluster and a user.
//   cluster: server, certificate-authority (a file) or certificate-authority-data (base64 PEM),
//            insecure-skip-tls-verify;
//   user:    token or tokenFile, client-certificate(-data) and client-key(-data);
//   context: namespace (default "default").
// Relative file names are taken from the kubeconfig's own folder, as kubectl does. Ways to log in
// that this client does not speak (exec plugins, auth providers, basic auth) and tls-server-name
// are refused with an error naming them, rather than failing later with a 401 or a TLS error.
//
// In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the service account's
// token, ca.crt and namespace under /var/run/secrets/kubernetes.io/serviceaccount. The token is a
// projected token that the kubelet rotates, so it is kept as a file name and re-read whenever the
// file changes (TokenSource).

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dispotify::op::kube {

inline constexpr std::string_view kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct KubeConfig {
  std::string server;  // "https://127.0.0.1:6443" (no trailing slash)
  // PEM of the CA certificates that sign the server's certificate; empty: the system's roots.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Client certificate authentication (both PEM, or both empty).
  std::string client_cert_pem;
  std::string client_key_pem;
  // Bearer token: a fixed one, or a file re-read when it changes (token_file wins when both are
  // set, as in client-go).
  std::string token;
  std::string token_file;
  std::string ns = "default";  // the namespace to work in
  std::string source;          // for messages: "kubeconfig /x/config, context test" or "in-cluster"
};

// Parses kubeconfig text. `base_dir` resolves relative file names; `context` overrides the
// current-context when not empty. Files named by the kubeconfig (CA, certificate, key) are read
// here; a token file is only checked to exist (it is read at each use).
Result<KubeConfig> ParseKubeconfig(std::string_view yaml, const std::string& base_dir,
                                   const std::string& context = "");
Result<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

// Reads an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

// The in-cluster configuration. `secrets_dir` replaces kServiceAccountDir in tests.
Result<KubeConfig> LoadInCluster(const std::string& secrets_dir = std::string(kServiceAccountDir),
                                 const EnvLookup& env = ProcessEnv());

// What a program without a --kubeconfig flag uses: $KUBECONFIG (its first file) when set, else
// in-cluster when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config.
Result<KubeConfig> LoadDefault(const EnvLookup& env = ProcessEnv());

// The bearer token of a configuration, re-read from its file whenever the file changes (another
// inode, size or modification time: the kubelet swaps a symlink to rotate a projected token).
// Thread-safe.
class TokenSource {
 public:
  explicit TokenSource(const KubeConfig& config);

  // "" when the configuration has no token (client certificates, or none at all). Not OK only when
  // the file cannot be read and no earlier read succeeded.
  Result<std::string> Token();
  // Forces a re-read on the next Token() (after a 401: the file may have changed within the same
  // second and size).
  void Invalidate();

 private:
  struct FileStamp {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  const std::string fixed_;
  const std::string file_;
  std::mutex mu_;
  std::optional<FileStamp> stamp_;  // of the file when cached_ was read
  std::string cached_;
};

// Base64 (RFC 4648, padding optional, whitespace ignored) as kubeconfig's *-data fields hold it.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace dispotify::op::kube
