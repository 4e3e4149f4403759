// dispotify-node: parses the configuration, builds the Node composition root and runs it until
// SIGTERM/SIGINT (graceful stop) or a fatal condition (see UsageText() for the exit codes).
// `dispotify-node probe URL` is a health probe instead (common/rest/probe.h).

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "common/rest/probe.h"
#include "node/server/config.h"
#include "node/server/node.h"
#include "node/server/raft_node.h"

int main(int argc, char** argv) {
  using namespace dispotify::server;
  std::vector<std::string> args(argv + 1, argv + argc);
  // The images' HEALTHCHECK (no shell or curl in them): a GET, exit 0 on 2xx.
  if (!args.empty() && args[0] == "probe") {
    return dispotify::rest::RunProbeCommand("dispotify-node", {args.begin() + 1, args.end()});
  }
  auto config = LoadConfig(args, ProcessEnvironment());
  if (!config.ok()) {
    std::fprintf(stderr, "dispotify-node: %s\n(see dispotify-node --help)\n",
                 config.status().message().c_str());
    return kExitBadConfig;
  }
  if (config->help) {
    std::fputs(UsageText().c_str(), stdout);
    return kExitOk;
  }

  // Signals are taken synchronously by one thread; every other thread (created after this
  // point) inherits the mask and never sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Node node(std::move(config).value(), DISPOTIFY_VERSION);
  int code = node.Start();
  if (code == Node::kCompleted) return kExitOk;
  if (code != kExitOk) return code;

  std::atomic<bool> done{false};
  std::thread waiter([&] {
    timespec timeout{0, 200 * 1000 * 1000};
    while (!done.load()) {
      if (sigtimedwait(&signals, nullptr, &timeout) > 0) {
        node.RequestStop();
        return;
      }
    }
  });
  code = node.Wait();
  done.store(true);
  waiter.join();
  return code;
}
