// dispotifyctl: the command-line client of a Dispotify cluster. See UsageText() in args.cc.

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "cli/dispotifyctl/args.h"
#include "cli/dispotifyctl/commands.h"
#include "cli/dispotifyctl/token_store.h"

int main(int argc, char** argv) {
  using namespace dispotify::cli;
  // A closed pipe (`... | head`) must be an error from write(2), not a silent death.
  ::signal(SIGPIPE, SIG_IGN);

  // Read before any thread starts (getenv is not thread-safe against setenv).
  Environment env;
  if (const char* e = std::getenv("DISPOTIFY_ENDPOINTS")) env.endpoints = e;  // NOLINT(concurrency-mt-unsafe)
  if (const char* t = std::getenv("DISPOTIFY_TOKEN")) env.token = t;          // NOLINT(concurrency-mt-unsafe)
  auto var = [](const char* name) -> std::string {
    const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
    return v == nullptr ? "" : v;
  };
  env.ca_file = var("DISPOTIFY_CA_FILE");
  env.token_file = TokenFilePath(var("DISPOTIFY_TOKEN_FILE"), var("XDG_CONFIG_HOME"), var("HOME"));
  auto inv = ParseArgs(std::vector<std::string>(argv + 1, argv + argc), env);
  if (!inv.ok()) {
    std::cerr << "dispotifyctl: " << inv.status().message() << "\n";
    return kExitUsage;
  }
  if (inv->command == Command::kHelp && argc == 1) {
    std::cerr << UsageText();
    return kExitUsage;
  }

  Console console{std::cout, std::cerr};
  console.out_is_tty = ::isatty(STDOUT_FILENO) == 1;
  console.err_is_tty = ::isatty(STDERR_FILENO) == 1;
  struct winsize ws {};
  if (console.err_is_tty && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
    console.width = ws.ws_col;
  const int code = Run(*inv, console);
  std::cout.flush();
  return code;
}
