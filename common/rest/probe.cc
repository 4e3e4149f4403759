#include "common/rest/probe.h"

#include <charconv>
#include <iostream>

#include "common/rest/client.h"

namespace dispotify::rest {

Result<std::pair<std::string, std::string>> SplitUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Status::InvalidArgument("'" + std::string(url) + "' is not an http:// or https:// URL");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    return Status::InvalidArgument("'" + std::string(url) + "': only http and https are supported");
  }
  const size_t host_start = scheme_end + 3;
  const size_t path_start = url.find_first_of("/?", host_start);
  const std::string_view authority = url.substr(host_start, path_start - host_start);
  if (authority.empty()) return Status::InvalidArgument("'" + std::string(url) + "' names no host");
  std::string target = path_start == std::string_view::npos ? "/" : std::string(url.substr(path_start));
  if (target.front() == '?') target.insert(0, "/");
  return std::make_pair(std::string(url.substr(0, host_start)) + std::string(authority), std::move(target));
}

Status Probe(std::string_view url, std::chrono::milliseconds timeout, const std::string& ca_file) {
  auto parts = SplitUrl(url);
  if (!parts.ok()) return parts.status();
  ClientOptions options;
  options.endpoints = {parts->first};
  options.timeout = timeout;
  options.max_rounds = 1;  // one request: the engine retries, not us
  options.ca_file = ca_file;
  Client client(std::move(options));
  auto reply = client.Call("GET", parts->second);
  if (!reply.ok()) {
    // The client's message lists each endpoint's failure under a headline about retrying, which
    // says nothing to someone reading a health log: keep the cause only.
    std::string why = reply.status().message();
    const std::string prefix = parts->first + ": ";
    if (const size_t at = why.find(prefix); at != std::string::npos) why = why.substr(at + prefix.size());
    return Status::Unavailable("GET " + std::string(url) + ": no answer (" + why + ")");
  }
  if (reply->status < 200 || reply->status > 299) {
    return Status::Unavailable("GET " + std::string(url) + ": " +
                               DescribeHttpError(reply->status, reply->body));
  }
  return Status::Ok();
}

int RunProbeCommand(std::string_view program, const std::vector<std::string>& args) {
  const std::string usage =
      "usage: " + std::string(program) + " probe URL [--timeout-ms N] [--ca-file FILE]\n";
  std::string url;
  std::string ca_file;
  auto timeout = kDefaultProbeTimeout;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--timeout-ms" || arg.rfind("--timeout-ms=", 0) == 0) {
      std::string value;
      if (arg.size() > std::string_view("--timeout-ms").size()) {
        value = arg.substr(arg.find('=') + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      }
      int ms = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
      if (ec != std::errc() || ptr != value.data() + value.size() || ms <= 0) {
        std::cerr << program << " probe: --timeout-ms needs a positive number of milliseconds\n" << usage;
        return 2;
      }
      timeout = std::chrono::milliseconds(ms);
    } else if (arg == "--ca-file" || arg.rfind("--ca-file=", 0) == 0) {
      // An https URL of a node whose certificate comes from a private CA (http_tls_cert_file).
      if (arg.size() > std::string_view("--ca-file").size()) {
        ca_file = arg.substr(arg.find('=') + 1);
      } else if (i + 1 < args.size()) {
        ca_file = args[++i];
      }
      if (ca_file.empty()) {
        std::cerr << program << " probe: --ca-file needs a file\n" << usage;
        return 2;
      }
    } else if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      return 0;
    } else if (url.empty() && arg.rfind("--", 0) != 0) {
      url = arg;
    } else {
      std::cerr << program << " probe: unexpected argument '" << arg << "'\n" << usage;
      return 2;
    }
  }
  if (url.empty()) {
    std::cerr << usage;
    return 2;
  }
  if (auto parts = SplitUrl(url); !parts.ok()) {
    std::cerr << program << " probe: " << parts.status().message() << "\n";
    return 2;
  }
  if (Status s = Probe(url, timeout, ca_file); !s.ok()) {
    std::cerr << program << " probe: " << s.message() << "\n";
    return 1;
  }
  std::cout << program << " probe: GET " << url << ": healthy\n";
  return 0;
}

}  // namespace dispotify::rest
