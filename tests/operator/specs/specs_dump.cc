// dispotify-operator-specs-dump CLUSTER_JSON OUT_DIR [REPLICAS]
// Parses a DispotifyCluster (as `kubectl get dspc NAME -o json` prints it), builds every object the
// operator would own (ServiceMonitor included when the spec asks for it) and writes each to
// OUT_DIR/NN-<kind>-<name>.json, then the CA and TLS Secrets the controller writes itself. REPLICAS is the
// StatefulSet size (default spec.replicas).
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "operator/api/types.h"
#include "operator/certs/certs.h"
#include "operator/specs/specs.h"

int main(int argc, char** argv) {
  using namespace dispotify::op;  // NOLINT(google-build-using-namespace)
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " CLUSTER_JSON OUT_DIR [REPLICAS]\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot read " << argv[1] << "\n";
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  web::json::value json;
  try {
    json = web::json::value::parse(text.str());
  } catch (const web::json::json_exception& e) {
    std::cerr << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
  auto cluster = api::ParseCluster(json);
  if (!cluster.ok()) {
    std::cerr << argv[1] << ": " << cluster.status().ToString() << "\n";
    return 1;
  }
  specs::DesiredParams params;
  params.stateful_set.replicas = argc > 3 ? std::stoi(argv[3]) : cluster->spec.replicas;
  params.admin_token = "dump-token";
  auto objects = specs::DesiredObjects(*cluster, specs::Settings{}, params);
  // The two Secrets the controller writes itself, with a real CA and real pairs.
  const int64_t now = std::time(nullptr);
  auto ca = certs::NewCa(cluster->metadata.uid, now, certs::Options{});
  if (!ca.ok()) {
    std::cerr << "CA: " << ca.status().ToString() << "\n";
    return 1;
  }
  auto pods = certs::PlanPodCertificates(*ca, cluster->metadata, params.stateful_set.replicas,
                                         specs::Settings{}, {}, now, certs::Options{});
  if (!pods.ok()) {
    std::cerr << "certificates: " << pods.status().ToString() << "\n";
    return 1;
  }
  objects.push_back(specs::CaSecret(*cluster, ca->cert_pem, ca->key_pem));
  objects.push_back(specs::TlsSecret(*cluster, pods->data));
  int n = 0;
  for (const auto& obj : objects) {
    const std::string prefix = (n < 10 ? "0" : "") + std::to_string(n);
    ++n;
    const std::string path = std::string(argv[2]) + "/" + prefix + "-" + obj.at("kind").as_string() + "-" +
                             obj.at("metadata").at("name").as_string() + ".json";
    std::ofstream out(path);
    out << obj.serialize() << "\n";
    if (!out) {
      std::cerr << "cannot write " << path << "\n";
      return 1;
    }
    std::cout << path << "\n";
  }
  return 0;
}
