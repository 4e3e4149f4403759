#pragma once
// Runs one parsed dispotifyctl command against the cluster and prints the outcome.

#include <cstddef>
#include <ostream>

#include "cli/dispotifyctl/args.h"

namespace dispotify::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // a request failed, or some of the files did
inline constexpr int kExitUsage = 2;

struct Console {
  std::ostream& out;  // tables, results (and nothing else when it carries a song)
  std::ostream& err;  // errors, progress, notes
  bool out_is_tty = false;
  bool err_is_tty = false;  // progress bars only on a terminal
  size_t width = 80;        // terminal columns, for the progress line
  int out_fd = 1;           // where `stream -o -` writes the song
};

int Run(const Invocation& inv, Console& console);

}  // namespace dispotify::cli
