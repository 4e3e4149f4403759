// dispotify-operator: reconciles DispotifyCluster custom resources (docs/operator.md). The
// composition root: flags, the Kubernetes client, the node admin client, the controller, and the
// health/metrics endpoint.
//
//   dispotify-operator [--kubeconfig PATH] [--context NAME] [--namespace NS] [--leader-elect=false]
//                      [--lease-namespace NS] [--lease-name NAME] [--identity ID]
//                      [--listen HOST:PORT] [--cluster-domain D] [--default-image IMAGE]
//                      [--node-timeout-ms N] [--cert-lifetime DURATION] [--ca-lifetime DURATION]
//
// Durations are a whole number and a unit: 90d, 2160h, 45m, 300s.
//
// Without --kubeconfig: in-cluster configuration, else $KUBECONFIG, else ~/.kube/config.
//
//   dispotify-operator probe URL [--timeout-ms N]: a GET, exit 0 on 2xx (the image's HEALTHCHECK,
//   which has no shell or curl to run; common/rest/probe.h).

#include <cpprest/http_listener.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "common/logging.h"
#include "common/rest/probe.h"
#include "operator/controller/controller.h"
#include "operator/kube/config.h"
#include "operator/kube/events.h"
#include "operator/metrics/prometheus_metrics.h"
#include "operator/nodes/nodes.h"

namespace {

using namespace dispotify;
using namespace dispotify::op;

struct Flags {
  std::string kubeconfig, context, watch_namespace;
  bool leader_elect = true;
  std::string lease_namespace, lease_name = "dispotify-operator", identity;
  std::string listen = "0.0.0.0:8081";
  std::string cluster_domain = "cluster.local", default_image;
  int node_timeout_ms = 3000;
  int lease_duration_ms = 15000;
  certs::Options certificates;
};

constexpr const char* kUsage =
    "usage: dispotify-operator [--kubeconfig PATH] [--context NAME] [--namespace NS] [--leader-elect=false]\n"
    "                          [--lease-namespace NS] [--lease-name NAME] [--identity ID] [--listen "
    "HOST:PORT]\n"
    "                          [--cluster-domain D] [--default-image IMAGE] [--node-timeout-ms N]\n"
    "                          [--lease-duration-ms N] [--cert-lifetime DURATION] [--ca-lifetime DURATION]\n"
    "  --cert-lifetime: the pods' certificates (default 90d, at least 60s), renewed at 2/3 of it\n"
    "  --ca-lifetime:   a new cluster CA (default 3650d); an existing CA is never replaced\n"
    "  durations: a whole number and a unit, 90d, 2160h, 45m or 300s\n";

// "90d", "2160h", "45m", "300s".
Result<std::chrono::seconds> ParseDuration(const std::string& flag, const std::string& text) {
  const Status bad =
      Status::InvalidArgument("--" + flag + " is a whole number and a unit (s, m, h or d), e.g. 90d");
  if (text.size() < 2) return bad;
  const std::string digits = text.substr(0, text.size() - 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return bad;
  const int64_t n = std::stoll(digits);
  switch (text.back()) {
    case 's': return std::chrono::seconds(n);
    case 'm': return std::chrono::seconds(n * 60);
    case 'h': return std::chrono::seconds(n * 3600);
    case 'd': return std::chrono::seconds(n * 86400);
    default: return bad;
  }
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  std::map<std::string, std::string*> strings = {{"kubeconfig", &f.kubeconfig},
                                                 {"context", &f.context},
                                                 {"namespace", &f.watch_namespace},
                                                 {"lease-namespace", &f.lease_namespace},
                                                 {"lease-name", &f.lease_name},
                                                 {"identity", &f.identity},
                                                 {"listen", &f.listen},
                                                 {"cluster-domain", &f.cluster_domain},
                                                 {"default-image", &f.default_image}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return Status::InvalidArgument("");
    if (arg.rfind("--", 0) != 0) return Status::InvalidArgument("unexpected argument '" + arg + "'");
    arg = arg.substr(2);
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg != "leader-elect") {
      if (i + 1 >= argc) return Status::InvalidArgument("--" + arg + " needs a value");
      value = argv[++i];
    } else {
      value = "true";
    }
    if (auto it = strings.find(arg); it != strings.end()) {
      *it->second = value;
    } else if (arg == "leader-elect") {
      if (value != "true" && value != "false")
        return Status::InvalidArgument("--leader-elect is true or false");
      f.leader_elect = value == "true";
    } else if (arg == "node-timeout-ms") {
      f.node_timeout_ms = std::atoi(value.c_str());
      if (f.node_timeout_ms <= 0)
        return Status::InvalidArgument("--node-timeout-ms must be a positive number");
    } else if (arg == "lease-duration-ms") {
      f.lease_duration_ms = std::atoi(value.c_str());
      if (f.lease_duration_ms < 1500)
        return Status::InvalidArgument("--lease-duration-ms must be at least 1500");
    } else if (arg == "cert-lifetime" || arg == "ca-lifetime") {
      auto d = ParseDuration(arg, value);
      if (!d.ok()) return d.status();
      if (arg == "cert-lifetime") {
        if (*d < certs::kMinLeafLifetime)
          return Status::InvalidArgument("--cert-lifetime must be at least " +
                                         std::to_string(certs::kMinLeafLifetime.count()) + "s");
        f.certificates.leaf_lifetime = *d;
      } else {
        if (*d < std::chrono::hours(24)) return Status::InvalidArgument("--ca-lifetime must be at least 1d");
        f.certificates.ca_lifetime = *d;
      }
    } else {
      return Status::InvalidArgument("unknown flag --" + arg);
    }
  }
  return f;
}

std::string DefaultIdentity() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  return std::string(host) + "-" + std::to_string(rd() % 1000000);
}

// /healthz (the process answers), /readyz (its caches are synced) and /metrics, on one port.
class HealthServer {
 public:
  HealthServer(const std::string& listen, const controller::Controller* controller,
               metrics::PrometheusMetrics* metrics)
      : controller_(controller), metrics_(metrics), listener_(web::uri("http://" + listen)) {
    listener_.support(web::http::methods::GET, [this](const web::http::http_request& req) { Serve(req); });
  }
  Status Open() {
    try {
      listener_.open().wait();
      return Status::Ok();
    } catch (const std::exception& e) {
      return Status::Unavailable(std::string("cannot listen: ") + e.what());
    }
  }
  void Close() {
    try {
      listener_.close().wait();
    } catch (const std::exception&) {
    }
  }

 private:
  void Serve(const web::http::http_request& req) {
    const std::string path = req.relative_uri().path();
    const controller::ControllerStats& stats = controller_->stats();
    if (path == "/healthz") {
      req.reply(200, "ok\n");
    } else if (path == "/readyz") {
      req.reply(stats.synced ? 200 : 503, stats.synced ? "ok\n" : "caches not synced\n");
    } else if (path == "/metrics") {
      web::http::http_response res(200);
      res.set_body(metrics_->Scrape(controller_->QueueDepth(), stats.leading), "text/plain; version=0.0.4");
      req.reply(res);
    } else {
      req.reply(404, "not found\n");
    }
  }

  const controller::Controller* controller_;
  metrics::PrometheusMetrics* metrics_;
  web::http::experimental::listener::http_listener listener_;
};

int Run(const Flags& flags) {
  auto config =
      flags.kubeconfig.empty() ? kube::LoadDefault() : kube::LoadKubeconfig(flags.kubeconfig, flags.context);
  if (!config.ok()) {
    std::cerr << "dispotify-operator: " << config.status().ToString() << "\n";
    return 1;
  }
  auto api = kube::NewHttpsKubeApi(*config);
  if (!api.ok()) {
    std::cerr << "dispotify-operator: " << api.status().ToString() << "\n";
    return 1;
  }
  const std::string identity = flags.identity.empty() ? DefaultIdentity() : flags.identity;
  kube::EventRecorder events(api->get(), identity);

  controller::ReconcilerDeps deps;
  deps.kube = api->get();
  deps.events = &events;
  metrics::PrometheusMetrics metrics;
  deps.metrics = &metrics;
  const auto node_timeout = std::chrono::milliseconds(flags.node_timeout_ms);
  deps.node_admin = [node_timeout](const std::string& token) {
    return nodes::NewHttpNodeAdmin(nodes::NodeAdminOptions{.token = token, .timeout = node_timeout});
  };
  controller::ReconcilerOptions ropts;
  ropts.settings.cluster_domain = flags.cluster_domain;
  ropts.settings.default_image = flags.default_image;
  ropts.certificates = flags.certificates;
  // Read before any thread starts; nothing sets the environment.
  const char* crash = std::getenv("DISPOTIFY_OPERATOR_CRASH_AFTER_JOURNAL");  // NOLINT(concurrency-mt-unsafe)
  if (crash != nullptr) ropts.crash_after_journal = crash;
  crash = std::getenv("DISPOTIFY_OPERATOR_CRASH_AFTER_ACTION");  // NOLINT(concurrency-mt-unsafe)
  if (crash != nullptr) ropts.crash_after_action = crash;

  controller::ControllerOptions copts;
  copts.watch_namespace = flags.watch_namespace;
  copts.leader_elect = flags.leader_elect;
  copts.election.lease_namespace = flags.lease_namespace.empty() ? config->ns : flags.lease_namespace;
  copts.election.lease_name = flags.lease_name;
  copts.election.identity = identity;
  // client-go's proportions (15 s / 10 s / 2 s): a deposed leader gives up at the renew deadline,
  // well before another replica may take the lease over.
  const std::chrono::milliseconds lease(flags.lease_duration_ms);
  copts.election.timing = {
      .lease_duration = lease, .renew_deadline = lease * 2 / 3, .retry_period = lease * 2 / 15};

  // SIGTERM/SIGINT end the process cleanly (the lease is released for a fast successor).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  controller::Controller ctl(api->get(), std::move(deps), std::move(ropts), copts);
  HealthServer health(flags.listen, &ctl, &metrics);
  if (Status s = health.Open(); !s.ok()) {
    std::cerr << "dispotify-operator: --listen " << flags.listen << ": " << s.ToString() << "\n";
    return 1;
  }
  if (Status s = ctl.Start(); !s.ok()) {
    std::cerr << "dispotify-operator: " << s.ToString() << "\n";
    return 1;
  }
  DLOG_INFO << "dispotify-operator " << identity << " started (" << config->source << ", namespace "
            << (flags.watch_namespace.empty() ? "all" : flags.watch_namespace) << ", health on "
            << flags.listen << ")";
  int sig = 0;
  sigwait(&signals, &sig);
  DLOG_INFO << "dispotify-operator: signal " << sig << ", stopping";
  ctl.Stop();
  health.Close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "probe") {
    return dispotify::rest::RunProbeCommand("dispotify-operator", {argv + 2, argv + argc});
  }
  auto flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    if (!flags.status().message().empty())
      std::cerr << "dispotify-operator: " << flags.status().message() << "\n";
    std::cerr << kUsage;
    return flags.status().message().empty() ? 0 : 2;
  }
  return Run(*flags);
}
