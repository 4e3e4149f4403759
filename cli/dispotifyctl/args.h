#pragma once
// The command line of dispotifyctl: global options, one command, its operands and options.
//
//   dispotifyctl [--endpoints URL,URL...] [--token T] [--ca-file F] [--timeout S] [--json] COMMAND [ARGS...]
//
// The file ids of `stream` and `rm` are checked with the server's rule (common/file_id.h) so that
// a typo gets a clear message and nothing odd ever lands in a URL path.
//
// Options may come before or after the command words; `--name=value` and `--name value` are both
// accepted, and `--` ends the options. Parsing is pure (the environment comes in as a value) so
// that tests can drive it.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dispotify::cli {

enum class Command : uint8_t {
  kHelp,
  kUpload,
  kSearch,
  kStream,
  kList,
  kRemove,
  kClusterStatus,
  kClusterAdd,
  kClusterPromote,
  kClusterRemove,
  kClusterTransfer,
  kReplicationSet,
  kLogin,
  kLogout,
  kAuditList,
  kAuditVerify,
};

inline constexpr std::string_view kDefaultEndpoint = "http://127.0.0.1:8081";
inline constexpr std::chrono::milliseconds kDefaultTimeout{30000};

// What the process environment contributes (DISPOTIFY_ENDPOINTS, DISPOTIFY_TOKEN); empty when unset.
struct Environment {
  std::string endpoints;
  std::string token;
  std::string token_file;  // where `login` stores its token (token_store.h); "" = nowhere
  std::string ca_file;     // $DISPOTIFY_CA_FILE
};

struct Invocation {
  Command command = Command::kHelp;
  std::vector<std::string> endpoints;  // base URLs without a trailing '/', in failover order
  std::string token;                   // bearer token sent on every call; empty: the stored one
  std::string token_file;              // the stored token's file (login writes it)
  std::string ca_file;                 // extra trusted CAs for https:// endpoints; "": none
  bool password_stdin = false;         // login: read the password from stdin, not the terminal
  std::chrono::milliseconds timeout = kDefaultTimeout;
  bool json = false;
  std::optional<uint64_t> limit;      // search, ls
  std::optional<std::string> output;  // stream: a path, or "-" for stdout
  bool resume = false;                // stream: continue a partial output file
  bool replace = false;               // upload: replace other content stored under a file's id
  bool stale = false;                 // search, ls, stream: accept an answer that may be stale
  std::optional<std::string> sha256;  // stream: the content's SHA-256 (lowercase hex); skips the lookup
  std::vector<std::string> operands;  // upload: paths; search: the query words; stream, rm: file ids;
                                      // login: the user name
  uint64_t node_id = 0;               // cluster add/promote/remove/transfer (0: transfer to any)
  std::string address;                // cluster add: host:port of the node's gRPC listener
  uint32_t factor = 0;                // replication set
};

// argv without the program name. Errors are kInvalidArgument with a message for the user.
Result<Invocation> ParseArgs(const std::vector<std::string>& args, const Environment& env);

// "http://a:1,b:2/" -> {"http://a:1", "http://b:2"}: a missing scheme means http://; only http and
// https; spaces around commas are ignored.
Result<std::vector<std::string>> ParseEndpoints(std::string_view list);

// "2", "0.5" -> milliseconds; must be > 0 and at most a day.
Result<std::chrono::milliseconds> ParseTimeout(std::string_view seconds);

std::string UsageText();

}  // namespace dispotify::cli
