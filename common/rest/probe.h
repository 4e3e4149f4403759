#pragma once
// A health probe built into our binaries (`dispotify-node probe URL`, `dispotify-operator probe
// URL`): one GET, success on a 2xx answer. Container images run it as their HEALTHCHECK (and
// Kubernetes can run it as an exec probe) because they hold no shell and no curl.
//
// No failover and no retries: the engine that runs the probe has its own interval and retry count,
// and a probe that waited for a node to recover would only hide how long it was down.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dispotify::rest {

// The default bound of one probe: well under the HEALTHCHECK timeout of the images (5 s), so a
// hung server makes the probe fail with its own message rather than be killed by the engine.
inline constexpr std::chrono::milliseconds kDefaultProbeTimeout{3000};

// Splits "http://host:port/path?query" into its base ("http://host:port") and target ("/path?query",
// "/" when empty). Only http and https.
Result<std::pair<std::string, std::string>> SplitUrl(std::string_view url);

// GETs `url` once. OK on a 2xx answer; otherwise a Status that names the URL and says what
// happened: the HTTP status and the start of the body, or why no answer came (kUnavailable).
// `ca_file`: for an https URL, a PEM file of CAs trusted on top of the system's (ClientOptions).
Status Probe(std::string_view url, std::chrono::milliseconds timeout = kDefaultProbeTimeout,
             const std::string& ca_file = "");

// The `probe` subcommand: `args` are what follows "probe" (URL [--timeout-ms N] [--ca-file F]). Prints one
// line (stdout when healthy, stderr otherwise; the engine keeps both in its health log) and returns the exit
// code: 0 healthy, 1 unhealthy, 2 bad usage.
int RunProbeCommand(std::string_view program, const std::vector<std::string>& args);

}  // namespace dispotify::rest
