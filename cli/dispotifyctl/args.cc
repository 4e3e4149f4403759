#include "cli/dispotifyctl/args.h"

#include <charconv>
#include <cmath>

#include "common/file_id.h"
#include "common/sha256.h"

namespace dispotify::cli {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<uint64_t> ParseUint(std::string_view what, std::string_view text, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return Status::InvalidArgument(std::string(what) + " must be a whole number in [" + std::to_string(min) +
                                   ", " + std::to_string(max) + "], not '" + std::string(text) + "'");
  }
  return v;
}

Status CheckFileIds(const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    if (!IsValidFileId(id))
      return Status::InvalidArgument("'" + id + "' is not a file id (1-128 of A-Z a-z 0-9 . _ -)");
  }
  return Status::Ok();
}

enum class Opt : uint8_t {
  kEndpoints,
  kCaFile,
  kToken,
  kTimeout,
  kJson,
  kLimit,
  kOutput,
  kResume,
  kReplace,
  kStale,
  kSha256,
  kPasswordStdin,
  kHelp
};

struct OptSpec {
  std::string_view long_name;
  std::string_view short_name;
  Opt opt;
  bool takes_value;
};

constexpr OptSpec kOptions[] = {
    {"--endpoints", "-e", Opt::kEndpoints, true},
    {"--token", "", Opt::kToken, true},
    {"--ca-file", "", Opt::kCaFile, true},
    {"--timeout", "-t", Opt::kTimeout, true},
    {"--json", "", Opt::kJson, false},
    {"--limit", "-n", Opt::kLimit, true},
    {"--output", "-o", Opt::kOutput, true},
    {"--resume", "-c", Opt::kResume, false},
    {"--replace", "", Opt::kReplace, false},
    {"--stale", "", Opt::kStale, false},
    {"--sha256", "", Opt::kSha256, true},
    {"--password-stdin", "", Opt::kPasswordStdin, false},
    {"--help", "-h", Opt::kHelp, false},
};

Status WrongArity(std::string_view usage) {
  return Status::InvalidArgument(std::string("usage: dispotifyctl ") + std::string(usage));
}

}  // namespace

Result<std::vector<std::string>> ParseEndpoints(std::string_view list) {
  std::vector<std::string> out;
  while (true) {
    const size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (!item.empty()) {
      std::string url(item);
      if (url.find("://") == std::string::npos) url.insert(0, "http://");
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
        return Status::InvalidArgument("endpoint '" + std::string(item) +
                                       "' must be an http:// or https:// URL");
      const size_t host_start = url.find("://") + 3;
      while (url.size() > host_start && url.back() == '/') url.pop_back();
      if (url.size() <= host_start)
        return Status::InvalidArgument("endpoint '" + std::string(item) + "' has no host");
      out.push_back(std::move(url));
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  if (out.empty()) return Status::InvalidArgument("no endpoint given");
  return out;
}

Result<std::chrono::milliseconds> ParseTimeout(std::string_view seconds) {
  const std::string text(Trim(seconds));
  double s = 0;
  size_t used = 0;
  try {
    s = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(s) || s <= 0 || s > 86400) {
    return Status::InvalidArgument("--timeout must be a number of seconds in (0, 86400], not '" + text + "'");
  }
  return std::chrono::milliseconds(std::max<int64_t>(1, std::llround(s * 1000)));
}

Result<Invocation> ParseArgs(const std::vector<std::string>& args, const Environment& env) {
  Invocation inv;
  std::optional<std::string> endpoints;
  std::optional<std::string> token;
  std::optional<std::string> ca_file;
  bool help = false;
  bool saw_limit = false;
  std::vector<std::string> words;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const OptSpec* spec = nullptr;
    for (const auto& o : kOptions) {
      if (name == o.long_name || (!o.short_name.empty() && name == o.short_name)) spec = &o;
    }
    if (spec == nullptr) return Status::InvalidArgument("unknown option '" + name + "' (see --help)");
    std::string value;
    if (spec->takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Status::InvalidArgument("option " + std::string(spec->long_name) + " needs a value");
      }
    } else if (inline_value) {
      return Status::InvalidArgument("option " + std::string(spec->long_name) + " takes no value");
    }
    switch (spec->opt) {
      case Opt::kEndpoints: endpoints = value; break;
      case Opt::kToken: token = value; break;
      case Opt::kCaFile: ca_file = value; break;
      case Opt::kTimeout: {
        auto t = ParseTimeout(value);
        if (!t.ok()) return t.status();
        inv.timeout = *t;
        break;
      }
      case Opt::kJson: inv.json = true; break;
      case Opt::kLimit: {
        auto n = ParseUint("--limit", value, 1, 1'000'000'000);
        if (!n.ok()) return n.status();
        inv.limit = *n;
        saw_limit = true;
        break;
      }
      case Opt::kOutput:
        if (value.empty()) return Status::InvalidArgument("--output needs a path (or - for stdout)");
        inv.output = value;
        break;
      case Opt::kResume: inv.resume = true; break;
      case Opt::kReplace: inv.replace = true; break;
      case Opt::kStale: inv.stale = true; break;
      case Opt::kSha256: {
        if (!IsSha256Hex(value)) return Status::InvalidArgument("--sha256 must be 64 hex digits");
        std::string hex = value;
        for (char& ch : hex) ch = static_cast<char>(ch >= 'A' && ch <= 'F' ? ch - 'A' + 'a' : ch);
        inv.sha256 = std::move(hex);
        break;
      }
      case Opt::kPasswordStdin: inv.password_stdin = true; break;
      case Opt::kHelp: help = true; break;
    }
  }

  auto eps = ParseEndpoints(
      endpoints ? *endpoints : (env.endpoints.empty() ? std::string(kDefaultEndpoint) : env.endpoints));
  if (!eps.ok()) return eps.status();
  inv.endpoints = std::move(eps).value();
  inv.token = token ? *token : env.token;
  inv.ca_file = ca_file ? *ca_file : env.ca_file;
  inv.token_file = env.token_file;

  if (help || words.empty() || words[0] == "help") {
    inv.command = Command::kHelp;
    return inv;
  }
  const std::string cmd = words[0];
  std::vector<std::string> rest(words.begin() + 1, words.end());
  if (cmd == "upload") {
    if (rest.empty()) return WrongArity("upload FILE|DIR...");
    inv.command = Command::kUpload;
    inv.operands = std::move(rest);
  } else if (cmd == "search") {
    if (rest.empty()) return WrongArity("search QUERY [--limit N]");
    inv.command = Command::kSearch;
    std::string query;
    for (const auto& w : rest) query += (query.empty() ? "" : " ") + w;
    inv.operands = {query};
  } else if (cmd == "stream") {
    if (rest.size() != 1) return WrongArity("stream FILE_ID [-o PATH|-] [--resume] [--sha256 HEX] [--stale]");
    inv.command = Command::kStream;
    inv.operands = std::move(rest);
  } else if (cmd == "ls") {
    if (!rest.empty()) return WrongArity("ls [--limit N]");
    inv.command = Command::kList;
  } else if (cmd == "rm") {
    if (rest.empty()) return WrongArity("rm FILE_ID...");
    inv.command = Command::kRemove;
    inv.operands = std::move(rest);
  } else if (cmd == "cluster") {
    const std::string sub = rest.empty() ? "" : rest[0];
    const size_t n = rest.size();
    if (sub == "status" && n == 1) {
      inv.command = Command::kClusterStatus;
    } else if (sub == "add" && n == 3) {
      inv.command = Command::kClusterAdd;
      auto id = ParseUint("the node id", rest[1], 1, UINT64_MAX >> 1);
      if (!id.ok()) return id.status();
      inv.node_id = *id;
      inv.address = rest[2];
      if (inv.address.find(':') == std::string::npos)
        return Status::InvalidArgument("the address must be host:port (the node's gRPC listener)");
    } else if ((sub == "promote" || sub == "remove") && n == 2) {
      inv.command = sub == "promote" ? Command::kClusterPromote : Command::kClusterRemove;
      auto id = ParseUint("the node id", rest[1], 1, UINT64_MAX >> 1);
      if (!id.ok()) return id.status();
      inv.node_id = *id;
    } else if (sub == "transfer" && (n == 1 || n == 2)) {
      inv.command = Command::kClusterTransfer;
      if (n == 2) {
        auto id = ParseUint("the node id", rest[1], 1, UINT64_MAX >> 1);
        if (!id.ok()) return id.status();
        inv.node_id = *id;
      }
    } else {
      return WrongArity("cluster status | add ID ADDRESS | promote ID | remove ID | transfer [ID]");
    }
  } else if (cmd == "replication") {
    if (rest.size() != 2 || rest[0] != "set") return WrongArity("replication set N");
    auto f = ParseUint("the replication factor", rest[1], 1, 16);
    if (!f.ok()) return f.status();
    inv.command = Command::kReplicationSet;
    inv.factor = static_cast<uint32_t>(*f);
  } else if (cmd == "login") {
    if (rest.size() != 1) return WrongArity("login USER [--password-stdin]");
    inv.command = Command::kLogin;
    inv.operands = std::move(rest);
  } else if (cmd == "audit") {
    if (rest.size() == 1 && rest[0] == "ls") {
      inv.command = Command::kAuditList;
    } else if (rest.size() == 1 && rest[0] == "verify") {
      inv.command = Command::kAuditVerify;
    } else {
      return WrongArity("audit ls [--limit N] | audit verify");
    }
  } else if (cmd == "logout") {
    if (!rest.empty()) return WrongArity("logout");
    inv.command = Command::kLogout;
  } else {
    return Status::InvalidArgument("unknown command '" + cmd + "' (see --help)");
  }
  if (inv.password_stdin && inv.command != Command::kLogin)
    return Status::InvalidArgument("--password-stdin applies to login only");

  if (saw_limit && inv.command != Command::kSearch && inv.command != Command::kList &&
      inv.command != Command::kAuditList)
    return Status::InvalidArgument("--limit applies to search, ls and audit ls only");
  if ((inv.output || inv.resume) && inv.command != Command::kStream)
    return Status::InvalidArgument("--output and --resume apply to stream only");
  if (inv.replace && inv.command != Command::kUpload)
    return Status::InvalidArgument("--replace applies to upload only");
  if (inv.stale && inv.command != Command::kSearch && inv.command != Command::kList &&
      inv.command != Command::kStream)
    return Status::InvalidArgument("--stale applies to search, ls and stream only");
  if (inv.sha256 && inv.command != Command::kStream)
    return Status::InvalidArgument("--sha256 applies to stream only");
  if (inv.resume && (!inv.output || *inv.output == "-"))
    return Status::InvalidArgument("--resume needs -o PATH (a file to continue)");
  if (inv.command == Command::kStream || inv.command == Command::kRemove) {
    DISPOTIFY_RETURN_IF_ERROR(CheckFileIds(inv.operands));
  }
  return inv;
}

std::string UsageText() {
  return R"(dispotifyctl - command-line client of a Dispotify cluster (REST API of any node)

Usage: dispotifyctl [OPTIONS] COMMAND [ARGS...]

Commands:
  upload FILE|DIR...            upload files; folders recursively (mp3 flac ogg opus m4a wav aac);
         [--replace]            a file's id comes from its path from the folder named (so
                                `upload ~/Music` sends Music/Album/01.mp3); files already stored
                                are skipped; --replace overwrites other content under an id
  search QUERY [--limit N]      search title, artist, album and file name (default 20 results)
  stream FILE_ID [-o PATH|-]    download a song to PATH (default: stdout when it is not a terminal)
         [--resume]             continue a partial PATH with a range request
         [--sha256 HEX]         the song's SHA-256 when known (skips looking the song up)
  ls [--limit N]                list songs by file id (all of them by default)
  rm FILE_ID...                 delete songs
  cluster status                members, leader, term, indexes, replication
  cluster add ID ADDRESS        add node ID (gRPC host:port) as a learner        [admin]
  cluster promote ID            promote a caught-up learner to voter            [admin]
  cluster remove ID             remove a member                                  [admin]
  cluster transfer [ID]         transfer leadership (to ID, or the best voter)   [admin]
  replication set N             set the replication factor (1-16)                [admin]
  login USER [--password-stdin] sign in (the password is asked on the terminal) and store an API
                                token for the next commands (30 days; see Credentials below)
  logout                        revoke the stored token and forget it
  audit ls [--limit N]          the latest audit entries (default 50)                [admin]
  audit verify                  check the whole audit chain's hashes, links and head   [admin]

Options:
  -e, --endpoints URL,...   nodes to talk to, tried in order when one is down or answers 503
                            (default: $DISPOTIFY_ENDPOINTS, else http://127.0.0.1:8081)
      --token T             bearer token sent on every call (default: $DISPOTIFY_TOKEN, else the
                            token `login` stored)
      --ca-file FILE        https:// endpoints: also trust the CA(s) in this PEM file (a private
                            CA; default: $DISPOTIFY_CA_FILE, else the system's roots only)
  -t, --timeout S           seconds to keep retrying (and to wait on a silent connection); default 30
      --json                print the server's JSON instead of tables
      --stale               search, ls, stream: let the node answer from its own copy of the
                            catalog without asking the leader (faster; may miss recent changes)
  -h, --help                this text

Credentials: --token, else $DISPOTIFY_TOKEN, else the token stored by `login` in
$DISPOTIFY_TOKEN_FILE, else $XDG_CONFIG_HOME/dispotify/token, else ~/.config/dispotify/token
(mode 0600). A node that answers 429 (rate limited) is asked again after its Retry-After.

Exit status: 0 success, 1 a request failed, 2 bad usage.
)";
}

}  // namespace dispotify::cli
