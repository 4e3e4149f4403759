#pragma once
// Runs a program to completion for a test (dispotifyctl, ffmpeg): stdin from /dev/null, stdout and
// stderr captured through files in a scratch directory.

#include <string>
#include <vector>

namespace dispotify::testing_exec {

struct ExecResult {
  int code = -1;  // the exit code, 128 + the signal when killed, -1 when it could not start
  std::string out;
  std::string err;
};

// `args[0]` is a path or a name looked up in PATH.
ExecResult Exec(const std::vector<std::string>& args, const std::string& scratch_dir);

// The whole file ("" when it cannot be read).
std::string ReadWholeFile(const std::string& path);

}  // namespace dispotify::testing_exec
