#include "cli/dispotifyctl/commands.h"

#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "cli/dispotifyctl/api_model.h"
#include "cli/dispotifyctl/download_target.h"
#include "cli/dispotifyctl/files.h"
#include "cli/dispotifyctl/format.h"
#include "cli/dispotifyctl/token_store.h"
#include "common/audit/chain.h"
#include "common/audit/entry.h"
#include "common/file_id.h"
#include "common/repr_digest.h"
#include "common/rest/client.h"
#include "common/sha256.h"

namespace dispotify::cli {
namespace {

using rest::Client;
using rest::ClientOptions;
using rest::DescribeHttpError;
using rest::DownloadTarget;
using rest::HttpErrorCode;
using rest::HttpReply;
using rest::PercentEncode;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A JSON string literal (for the few JSON documents built here).
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Hint(int status) {
  if (status == 401) return " (dispotifyctl login USER, or pass --token, or set DISPOTIFY_TOKEN)";
  return "";
}

// Prints why a request failed; always returns kExitFailed.
int ReportFailure(Console& c, std::string_view what, const Result<HttpReply>& r) {
  c.err << "error: " << what << ": ";
  if (!r.ok())
    c.err << r.status().message() << "\n";
  else
    c.err << DescribeHttpError(r->status, r->body) << Hint(r->status) << "\n";
  return kExitFailed;
}

bool Is2xx(const Result<HttpReply>& r) {
  return r.ok() && r->status >= 200 && r->status < 300;
}

// One progress line on stderr, redrawn at most ten times a second; only on a terminal.
class ProgressLine {
 public:
  ProgressLine(Console& c, std::string label) : console_(c), label_(std::move(label)), start_(Clock::now()) {}
  ~ProgressLine() { Clear(); }

  void Update(uint64_t done, uint64_t total) {
    if (!console_.err_is_tty) return;
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
    last_ = now;
    drawn_ = true;
    console_.err << "\r" << FormatProgress(label_, done, total, SecondsSince(start_), console_.width - 1)
                 << "\x1b[K" << std::flush;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    if (!drawn_) return;
    console_.err << "\r\x1b[K" << std::flush;
    drawn_ = false;
  }

 private:
  Console& console_;
  const std::string label_;
  const Clock::time_point start_;
  std::mutex mu_;
  Clock::time_point last_;
  bool drawn_ = false;
};

// "&consistency=stale" when the user opted in with --stale.
std::string StaleParam(const Invocation& inv, char sep) {
  return inv.stale ? std::string(1, sep) + "consistency=stale" : "";
}

// Tells the user, once per command, that the node answered from a catalog that may lag.
class StaleNote {
 public:
  explicit StaleNote(Console& c) : console_(c) {}
  void Check(const Result<HttpReply>& r) {
    if (printed_ || !r.ok() || !r->stale) return;
    printed_ = true;
    console_.err << "note: answer may be stale (--stale: " << r->endpoint
                 << " answered from its own copy of the catalog)\n";
  }

 private:
  Console& console_;
  bool printed_ = false;
};

ClientOptions Options(const Invocation& inv, Console& c) {
  ClientOptions o{inv.endpoints, inv.token, inv.timeout};
  o.ca_file = inv.ca_file;
  o.on_retry = [&c](const std::string& note) {
    c.err << (c.err_is_tty ? "\r\x1b[K" : "") << "note: " << note << "\n" << std::flush;
  };
  return o;
}

int Upload(const Invocation& inv, Console& c) {
  const auto start = Clock::now();
  const UploadPlan plan = PlanUploads(inv.operands);
  struct Done {
    std::string path;
    std::string file_id;
    uint64_t bytes = 0;
  };
  struct Failed {
    std::string path;
    int status = 0;  // 0: no HTTP answer (local problem, or no node reachable)
    std::string reason;
  };
  std::vector<Done> uploaded;
  std::vector<Done> present;
  std::vector<Failed> failed;
  for (const auto& p : plan.problems) {
    failed.push_back({p.path, 0, p.reason});
    if (!inv.json) c.err << "FAILED         " << p.path << ": " << p.reason << "\n";
  }
  Client client(Options(inv, c));
  uint64_t bytes = 0;
  // The albums of the songs stored from each folder: an album picture (planned after them) names
  // its album when its folder's songs have exactly one, rather than leaving the node to guess it
  // from file ids.
  std::map<std::string, std::set<std::string>> folder_albums;
  auto folder_of = [](const std::string& relative_path) {
    const size_t slash = relative_path.find_last_of('/');
    return slash == std::string::npos ? std::string() : relative_path.substr(0, slash + 1);
  };
  for (size_t i = 0; i < plan.files.size(); ++i) {
    const UploadFile& f = plan.files[i];
    // The digest first: the node then refuses bytes that changed on the way (or on the disk
    // while they were read).
    auto digest = HashFile(f.path);
    if (!digest.ok()) {
      failed.push_back({f.path, 0, digest.status().message()});
      if (!inv.json) c.err << "FAILED         " << f.path << ": " << digest.status().message() << "\n";
      continue;
    }
    std::string target =
        "/music/upload?path=" + PercentEncode(f.relative_path) + (inv.replace ? "&replace=true" : "");
    const bool picture = IsAlbumPictureName(f.relative_path);
    if (picture) {
      std::set<std::string> albums;
      for (const auto& [folder, ids] : folder_albums) {
        if (folder.starts_with(folder_of(f.relative_path))) albums.insert(ids.begin(), ids.end());
      }
      if (albums.size() == 1) target += "&album_id=" + PercentEncode(*albums.begin());
    }
    Result<HttpReply> r = Status::Unavailable("not sent");
    {
      ProgressLine line(
          c, "[" + std::to_string(i + 1) + "/" + std::to_string(plan.files.size()) + "] " + f.name);
      r = client.Upload(f.path, f.size, target,
                        [&](uint64_t done, uint64_t total) { line.Update(done, total); },
                        {{"Repr-Digest", FormatReprDigest(*digest)}});
    }
    if (!r.ok()) {
      failed.push_back({f.path, 0, r.status().message()});
      if (!inv.json) c.err << "FAILED         " << f.path << ": " << r.status().message() << "\n";
      continue;
    }
    if (r->status == 201 || r->status == 200) {
      auto song = ParseSong(r->body);
      const std::string id = song.ok() ? song->file_id : "?";
      if (song.ok() && !picture && !song->album_id.empty()) {
        folder_albums[folder_of(f.relative_path)].insert(song->album_id);
      }
      bytes += f.size;
      (r->status == 201 ? uploaded : present).push_back({f.path, id, f.size});
      if (!inv.json) {
        c.out << (r->status == 201 ? "stored          " : "already present ") << f.path << " -> " << id
              << " (" << FormatBytes(f.size) << ")\n"
              << std::flush;
      }
      continue;
    }
    std::string reason = DescribeHttpError(r->status, r->body);
    if (r->status == 409 && HttpErrorCode(r->body) == "already_exists") {
      reason = "other content is already stored under its file id (" + reason +
               "); run again with --replace to overwrite it";
    }
    failed.push_back({f.path, r->status, reason});
    if (!inv.json) c.err << "FAILED         " << f.path << ": " << reason << "\n";
  }
  const double seconds = SecondsSince(start);

  if (inv.json) {
    auto list = [](const std::vector<Done>& v) {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ",";
        out += "{\"path\":" + JsonString(v[i].path) + ",\"file_id\":" + JsonString(v[i].file_id) +
               ",\"size_bytes\":" + std::to_string(v[i].bytes) + "}";
      }
      return out + "]";
    };
    std::string out =
        "{\"uploaded\":" + list(uploaded) + ",\"already_present\":" + list(present) + ",\"failed\":[";
    for (size_t i = 0; i < failed.size(); ++i) {
      if (i > 0) out += ",";
      out += "{\"path\":" + JsonString(failed[i].path) + ",\"status\":" + std::to_string(failed[i].status) +
             ",\"error\":" + JsonString(failed[i].reason) + "}";
    }
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%.3f", seconds);
    out += "],\"skipped\":" + std::to_string(plan.skipped) + ",\"bytes\":" + std::to_string(bytes) +
           ",\"seconds\":" + secs + "}";
    c.out << out << "\n";
  } else {
    if (plan.files.empty() && plan.problems.empty())
      c.err << "no audio files found (mp3 flac ogg opus m4a wav aac)\n";
    c.out << "\nstored " << uploaded.size() << ", already present " << present.size() << ", failed "
          << failed.size() << "; " << FormatBytes(bytes) << " in " << FormatSeconds(seconds) << " ("
          << FormatRate(bytes, seconds) << ")\n";
    if (plan.skipped > 0)
      c.out << "skipped " << plan.skipped << (plan.skipped == 1 ? " file that is" : " files that are")
            << " not audio\n";
    if (!failed.empty()) {
      c.out << "failed:\n";
      for (const auto& f : failed) c.out << "  " << f.path << ": " << f.reason << "\n";
    }
  }
  return failed.empty() ? kExitOk : kExitFailed;
}

int Search(const Invocation& inv, Console& c) {
  Client client(Options(inv, c));
  StaleNote stale(c);
  const uint64_t want = inv.limit.value_or(20);
  std::vector<SongRow> songs;
  std::vector<std::string> pages;
  uint64_t total = 0;
  std::string cursor;
  while (songs.size() < want) {
    const uint64_t n = std::min<uint64_t>(100, want - songs.size());
    std::string target = "/music/search?q=" + PercentEncode(inv.operands[0]) + "&limit=" + std::to_string(n);
    if (!cursor.empty()) target += "&cursor=" + PercentEncode(cursor);
    target += StaleParam(inv, '&');
    auto r = client.Call("GET", target);
    if (!Is2xx(r)) return ReportFailure(c, "search", r);
    stale.Check(r);
    auto page = ParseSongPage(r->body);
    if (!page.ok()) return ReportFailure(c, "search", page.status());
    pages.push_back(r->body);
    total = page->total;
    for (auto& s : page->items) songs.push_back(std::move(s));
    if (page->next.empty() || page->items.empty()) break;
    cursor = page->next;
  }
  if (inv.json) {
    auto merged = pages.size() == 1 ? Result<std::string>(pages[0]) : MergeItems(pages, total);
    if (!merged.ok()) return ReportFailure(c, "search", merged.status());
    c.out << *merged << "\n";
    return kExitOk;
  }
  if (songs.empty()) {
    c.out << "no matches for '" << inv.operands[0] << "'\n";
    return kExitOk;
  }
  c.out << FormatSongTable(songs);
  if (total > songs.size())
    c.out << "\n" << songs.size() << " of " << total << " matches (--limit N for more)\n";
  else
    c.out << "\n" << songs.size() << (songs.size() == 1 ? " match\n" : " matches\n");
  return kExitOk;
}

int List(const Invocation& inv, Console& c) {
  Client client(Options(inv, c));
  StaleNote stale(c);
  std::vector<SongRow> songs;
  std::vector<std::string> pages;
  std::string after;
  while (!inv.limit || songs.size() < *inv.limit) {
    const uint64_t n = inv.limit ? std::min<uint64_t>(1000, *inv.limit - songs.size()) : 1000;
    std::string target = "/music/songs?limit=" + std::to_string(n);
    if (!after.empty()) target += "&after=" + PercentEncode(after);
    target += StaleParam(inv, '&');
    auto r = client.Call("GET", target);
    if (!Is2xx(r)) return ReportFailure(c, "ls", r);
    stale.Check(r);
    auto page = ParseSongPage(r->body);
    if (!page.ok()) return ReportFailure(c, "ls", page.status());
    pages.push_back(r->body);
    for (auto& s : page->items) songs.push_back(std::move(s));
    if (page->next.empty() || page->items.empty()) break;
    after = page->next;
  }
  if (inv.json) {
    auto merged = MergeItems(pages);
    if (!merged.ok()) return ReportFailure(c, "ls", merged.status());
    c.out << *merged << "\n";
    return kExitOk;
  }
  if (songs.empty()) {
    c.out << "no songs\n";
    return kExitOk;
  }
  c.out << FormatSongTable(songs) << "\n" << songs.size() << (songs.size() == 1 ? " song\n" : " songs\n");
  return kExitOk;
}

int Stream(const Invocation& inv, Console& c) {
  const std::string& id = inv.operands[0];
  std::string output = inv.output.value_or("-");
  if (!inv.output && c.out_is_tty) {
    c.err << "error: refusing to write audio to a terminal; use -o PATH (or -o - to insist)\n";
    return kExitUsage;
  }
  Client client(Options(inv, c));
  // The song's SHA-256 names its content: the stream is then served from any verified copy,
  // without a catalog read on the serving node.
  std::string sha256 = inv.sha256.value_or("");
  if (sha256.empty()) {
    StaleNote stale(c);
    auto song = client.Call("GET", "/music/songs/" + PercentEncode(id) + StaleParam(inv, '?'));
    if (!Is2xx(song)) return ReportFailure(c, "stream " + id, song);
    stale.Check(song);
    auto row = ParseSong(song->body);
    if (!row.ok()) return ReportFailure(c, "stream " + id, row.status());
    // A server that names no digest gets the plain stream.
    if (IsSha256Hex(row->sha256)) sha256 = row->sha256;
  }
  const bool to_stdout = output == "-";
  std::optional<FileTarget> file;
  std::optional<StreamTarget> pipe;
  DownloadTarget* target = nullptr;
  if (to_stdout) {
    c.out.flush();
    target = &pipe.emplace(c.out_fd);
  } else {
    target = &file.emplace(output, inv.resume);
  }
  const uint64_t held = target->size();
  const auto start = Clock::now();
  Result<HttpReply> r = Status::Unavailable("not sent");
  {
    ProgressLine line(c, id);
    r = client.Download(
        id, target, [&](uint64_t done, uint64_t total) { line.Update(done, total); }, sha256);
  }
  // Notes go to stderr when stdout carries the song.
  std::ostream& note = to_stdout ? c.err : c.out;
  Status closed = file ? file->Finish() : Status::Ok();
  if (!Is2xx(r) || !closed.ok()) {
    if (!Is2xx(r))
      ReportFailure(c, "stream " + id, r);
    else
      c.err << "error: stream " << id << ": " << closed.message() << "\n";
    if (file && target->size() > 0)
      c.err << output << " holds the first " << target->size()
            << " bytes; run again with --resume to continue\n";
    return kExitFailed;
  }
  if (inv.json) {
    note << "{\"file_id\":" << JsonString(id) << ",\"output\":" << JsonString(output)
         << ",\"size_bytes\":" << target->size() << ",\"resumed_from\":" << held << "}\n";
    return kExitOk;
  }
  if (r->already_complete) {
    note << output << " already holds all of " << id << " (" << FormatBytes(target->size()) << ")\n";
    return kExitOk;
  }
  const double seconds = SecondsSince(start);
  const uint64_t fetched = target->size() - std::min(held, target->size());
  note << "streamed " << id << " to " << (to_stdout ? "stdout" : output) << ": "
       << FormatBytes(target->size());
  if (held > 0) note << " (" << FormatBytes(fetched) << " new)";
  note << " in " << FormatSeconds(seconds) << " (" << FormatRate(fetched, seconds) << ")\n";
  return kExitOk;
}

int Remove(const Invocation& inv, Console& c) {
  Client client(Options(inv, c));
  std::vector<std::string> deleted;
  std::vector<std::pair<std::string, std::string>> failed;
  for (const auto& id : inv.operands) {
    auto r = client.Call("DELETE", "/music/songs/" + PercentEncode(id));
    if (Is2xx(r)) {
      deleted.push_back(id);
      if (!inv.json) c.out << "deleted " << id << "\n";
      continue;
    }
    // A 404 after a lost answer is most likely our own first attempt's work: the song is gone,
    // which is what was asked.
    if (r.ok() && r->status == 404 && r->retried) {
      deleted.push_back(id);
      if (!inv.json) c.out << "deleted " << id << " (already gone when the request was retried)\n";
      continue;
    }
    const std::string reason = r.ok() ? DescribeHttpError(r->status, r->body) : r.status().message();
    failed.emplace_back(id, reason);
    if (!inv.json) c.err << "error: rm " << id << ": " << reason << "\n";
  }
  if (inv.json) {
    std::string out = "{\"deleted\":[";
    for (size_t i = 0; i < deleted.size(); ++i) out += (i > 0 ? "," : "") + JsonString(deleted[i]);
    out += "],\"failed\":[";
    for (size_t i = 0; i < failed.size(); ++i) {
      out += (i > 0 ? "," : "") + std::string("{\"file_id\":") + JsonString(failed[i].first) +
             ",\"error\":" + JsonString(failed[i].second) + "}";
    }
    c.out << out << "]}\n";
  }
  return failed.empty() ? kExitOk : kExitFailed;
}

int ClusterStatus(const Invocation& inv, Console& c) {
  Client client(Options(inv, c));
  auto r = client.Call("GET", "/cluster/status");
  if (!Is2xx(r)) return ReportFailure(c, "cluster status", r);
  if (inv.json) {
    c.out << r->body << "\n";
    return kExitOk;
  }
  auto status = ParseClusterStatus(r->body);
  if (!status.ok()) return ReportFailure(c, "cluster status", status.status());
  // Only the leader counts under-replicated songs: ask the other endpoints for the leader's view.
  if (status->under_replicated < 0) {
    for (const auto& ep : inv.endpoints) {
      if (ep == r->endpoint) continue;
      Client one({{ep}, inv.token, std::min(inv.timeout, std::chrono::milliseconds(2000))});
      auto other = one.Call("GET", "/cluster/status");
      if (!Is2xx(other)) continue;
      auto view = ParseClusterStatus(other->body);
      if (view.ok() && view->role == "leader" && view->under_replicated >= 0) {
        status->under_replicated = view->under_replicated;
        status->unavailable = view->unavailable;
        break;
      }
    }
  }
  c.out << FormatClusterStatus(*status);
  return kExitOk;
}

int Admin(const Invocation& inv, Console& c) {
  std::string method = "POST";
  std::string target;
  std::optional<std::string> body;
  std::string what;
  std::string done;
  const std::string id = std::to_string(inv.node_id);
  switch (inv.command) {
    case Command::kClusterAdd:
      target = "/admin/members";
      body = "{\"node_id\":" + id + ",\"address\":" + JsonString(inv.address) + "}";
      what = "cluster add";
      done = "node " + id + " (" + inv.address +
             ") added as a learner; once it has caught up: dispotifyctl " + "cluster promote " + id;
      break;
    case Command::kClusterPromote:
      target = "/admin/members/" + id + "/promote";
      what = "cluster promote";
      done = "node " + id + " is now a voter";
      break;
    case Command::kClusterRemove:
      method = "DELETE";
      target = "/admin/members/" + id;
      what = "cluster remove";
      done = "node " + id + " removed from the cluster";
      break;
    case Command::kClusterTransfer:
      target = "/admin/leadership";
      body = inv.node_id == 0 ? "{}" : "{\"target\":" + id + "}";
      what = "cluster transfer";
      done = inv.node_id == 0 ? "leadership transferred" : "leadership transferred to node " + id;
      break;
    case Command::kReplicationSet:
      method = "PUT";
      target = "/admin/replication";
      body = "{\"factor\":" + std::to_string(inv.factor) + "}";
      what = "replication set";
      done = "replication factor set to " + std::to_string(inv.factor);
      break;
    default: return kExitUsage;
  }
  Client client(Options(inv, c));
  auto r = client.Call(method, target, body ? &*body : nullptr);
  if (!Is2xx(r)) return ReportFailure(c, what, r);
  if (inv.json)
    c.out << (r->body.empty() ? "{}" : r->body) << "\n";
  else
    c.out << done << "\n";
  return kExitOk;
}

// The password for `login`: a line of stdin with --password-stdin, else asked on the terminal
// with echo off.
Result<std::string> ReadPassword(const Invocation& inv, Console& c) {
  std::string password;
  if (inv.password_stdin) {
    std::getline(std::cin, password);
  } else {
    if (::isatty(STDIN_FILENO) != 1) {
      return Status::InvalidArgument("no terminal to ask the password on: pipe it with --password-stdin");
    }
    c.err << "Password for " << inv.operands[0] << ": " << std::flush;
    termios old{};
    const bool have_tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (have_tty) {
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      (void)::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::getline(std::cin, password);
    if (have_tty) (void)::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    c.err << "\n";
  }
  while (!password.empty() && (password.back() == '\r' || password.back() == '\n')) password.pop_back();
  if (password.empty()) return Status::InvalidArgument("no password given");
  return password;
}

// Signs in with a password, turns the short browser-style session into an API token for this
// machine, ends the session, and stores the token (token_store.h).
int Login(const Invocation& inv, Console& c) {
  const std::string& user = inv.operands[0];
  auto password = ReadPassword(inv, c);
  if (!password.ok()) {
    c.err << "dispotifyctl: login: " << password.status().message() << "\n";
    return kExitUsage;
  }
  Invocation anonymous = inv;
  anonymous.token.clear();  // a stale token must not stand in for the password
  Client client(Options(anonymous, c));
  const std::string login_body =
      "{\"name\":" + JsonString(user) + ",\"password\":" + JsonString(*password) + "}";
  auto login = client.Call("POST", "/auth/login", &login_body);
  if (!Is2xx(login)) return ReportFailure(c, "login", login);
  auto csrf = StringField(login->body, "csrf_token");
  const std::string cookie = login->set_cookie.substr(0, login->set_cookie.find(';'));
  if (!csrf.ok() || cookie.empty()) {
    c.err << "dispotifyctl: login: the node answered without a session\n";
    return kExitFailed;
  }
  const rest::Headers session = {{"Cookie", cookie}, {"X-CSRF-Token", *csrf}};
  char host[256] = {};
  (void)::gethostname(host, sizeof(host) - 1);
  const std::string token_body = "{\"name\":" + JsonString("dispotifyctl@" + std::string(host)) + "}";
  auto made = client.Call("POST", "/auth/tokens", &token_body, session);
  (void)client.Call("POST", "/auth/logout", nullptr, session);  // the token is what lasts
  if (!Is2xx(made)) return ReportFailure(c, "login (creating a token)", made);
  auto token = StringField(made->body, "token");
  if (!token.ok()) {
    c.err << "dispotifyctl: login: " << token.status().message() << "\n";
    return kExitFailed;
  }
  if (Status s = StoreToken(inv.token_file, *token); !s.ok()) {
    c.err << "dispotifyctl: login: " << s.message() << "\n";
    return kExitFailed;
  }
  if (inv.json)
    c.out << made->body << "\n";
  else
    c.out << "logged in as " << user << "; token stored in " << inv.token_file << "\n";
  return kExitOk;
}

int Logout(const Invocation& inv, Console& c) {
  auto stored = LoadToken(inv.token_file);
  if (!stored.ok()) {
    c.err << "dispotifyctl: logout: " << stored.status().message() << "\n";
    return kExitFailed;
  }
  if (!stored->has_value()) {
    c.out << "not logged in (no token in " << inv.token_file << ")\n";
    return kExitOk;
  }
  Invocation with_stored = inv;
  with_stored.token = **stored;
  Client client(Options(with_stored, c));
  auto r = client.Call("DELETE", "/auth/tokens/" + Sha256Hex(**stored));
  // 401: already revoked or expired; the file is useless either way.
  if (!Is2xx(r) && !(r.ok() && r->status == 401)) return ReportFailure(c, "logout", r);
  if (Status s = ForgetToken(inv.token_file); !s.ok()) {
    c.err << "dispotifyctl: logout: " << s.message() << "\n";
    return kExitFailed;
  }
  c.out << "logged out; the token is revoked and " << inv.token_file << " removed\n";
  return kExitOk;
}

// "2026-12-07T06:45:19Z" for milliseconds since the Unix epoch.
std::string FormatTime(int64_t ms) {
  const time_t t = static_cast<time_t>(ms / 1000);
  struct tm utc {};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// Pages through the node's audit trail from `after`, handing each page to `each`.
int AuditPages(const Invocation& inv, Console& c, Client& client, uint64_t after, uint64_t limit,
               const std::function<bool(const AuditPage&)>& each) {
  while (true) {
    auto r =
        client.Call("GET", "/admin/audit?after=" + std::to_string(after) + "&limit=" + std::to_string(limit));
    if (!Is2xx(r)) return ReportFailure(c, "audit", r);
    auto page = ParseAuditPage(r->body);
    if (!page.ok()) {
      c.err << "dispotifyctl: audit: " << page.status().message() << "\n";
      return kExitFailed;
    }
    if (!each(*page) || !page->next_after) return kExitOk;
    after = *page->next_after;
  }
  (void)inv;
}

int AuditList(const Invocation& inv, Console& c) {
  Client client(Options(inv, c));
  const uint64_t n = inv.limit.value_or(50);
  // The head first, to start n entries before it.
  uint64_t head = 0;
  uint64_t checkpoint = 0;
  int code = AuditPages(inv, c, client, UINT64_MAX >> 1, 1, [&](const AuditPage& p) {
    head = p.head_seq;
    checkpoint = p.checkpoint_seq;
    return false;
  });
  if (code != kExitOk) return code;
  const uint64_t from = std::max(checkpoint, head > n ? head - n : 0);
  std::vector<std::string> items;
  code = AuditPages(inv, c, client, from, std::min<uint64_t>(n, 1000), [&](const AuditPage& p) {
    for (const std::string& raw : p.raw) items.push_back(raw);
    return items.size() < n;
  });
  if (code != kExitOk) return code;
  if (inv.json) c.out << "[";
  bool first = true;
  for (const std::string& raw : items) {
    auto e = audit::Decode(raw);
    if (!e.ok()) {
      c.err << "dispotifyctl: audit: a damaged entry: " << e.status().message() << "\n";
      continue;
    }
    if (inv.json) {
      c.out << (first ? "" : ",") << "{\"seq\":" << e->seq << ",\"time_ms\":" << e->time_ms
            << ",\"actor\":" << JsonString(e->actor) << ",\"client\":" << JsonString(e->client)
            << ",\"action\":" << JsonString(audit::ActionName(e->action))
            << ",\"target\":" << JsonString(e->target)
            << ",\"outcome\":" << JsonString(audit::OutcomeName(e->outcome))
            << ",\"code\":" << JsonString(e->code) << ",\"detail\":" << JsonString(e->detail) << "}";
    } else {
      c.out << e->seq << "  " << FormatTime(e->time_ms) << "  " << e->actor << "@" << e->client << "  "
            << audit::ActionName(e->action) << " " << e->target << "  " << audit::OutcomeName(e->outcome)
            << " " << e->code << (e->detail.empty() ? "" : "  " + e->detail) << "\n";
    }
    first = false;
  }
  if (inv.json) c.out << "]\n";
  return kExitOk;
}

// Reads the whole trail from the checkpoint and checks every hash and link, and that it ends at
// the head the node reports (common/audit/chain.h).
int AuditVerify(const Invocation& inv, Console& c) {
  Client client(Options(inv, c));
  std::optional<audit::ChainVerifier> verifier;
  std::optional<audit::ChainFault> fault;
  uint64_t count = 0;
  audit::ChainHead expected;
  audit::Checkpoint start;
  int code = kExitOk;
  uint64_t after = 0;
  bool first = true;
  code = AuditPages(inv, c, client, after, 1000, [&](const AuditPage& p) {
    if (first) {
      first = false;
      auto h = audit::ParseHead(std::to_string(p.head_seq) + " " + p.head_hash);
      auto cp = audit::ParseHead(std::to_string(p.checkpoint_seq) + " " + p.checkpoint_hash);
      if (!h || !cp) {
        c.err << "dispotifyctl: audit verify: the node sent a malformed head or checkpoint\n";
        code = kExitFailed;
        return false;
      }
      expected = *h;
      start = *cp;
      verifier.emplace(start, expected);
    }
    for (const std::string& raw : p.raw) {
      auto e = audit::Decode(raw);
      if (!e.ok()) {
        fault = audit::ChainFault{verifier->head().seq + 1, audit::Fault::kMalformed};
        return false;
      }
      if (auto f = verifier->Add(*e)) {
        fault = f;
        return false;
      }
      ++count;
    }
    return true;
  });
  if (code != kExitOk) return code;
  if (!verifier) return kExitFailed;
  if (!fault) fault = verifier->Finish();
  if (fault) {
    c.out << "audit chain BROKEN at entry " << fault->seq << ": " << audit::FaultName(fault->fault) << " ("
          << count << " entries verified before it)\n";
    return kExitFailed;
  }
  c.out << "audit chain verified: " << count << " entries, from checkpoint " << start.seq << " to head "
        << expected.seq << " " << ToHex(expected.hash) << "\n";
  return kExitOk;
}

}  // namespace

int Run(const Invocation& given, Console& console) {
  Invocation inv = given;
  if (inv.token.empty() && inv.command != Command::kLogin && inv.command != Command::kLogout) {
    auto stored = LoadToken(inv.token_file);
    if (!stored.ok()) {
      console.err << "dispotifyctl: " << stored.status().message() << "\n";
      return kExitFailed;
    }
    if (stored->has_value()) inv.token = **stored;
  }
  switch (inv.command) {
    case Command::kHelp: console.out << UsageText(); return kExitOk;
    case Command::kUpload: return Upload(inv, console);
    case Command::kSearch: return Search(inv, console);
    case Command::kStream: return Stream(inv, console);
    case Command::kList: return List(inv, console);
    case Command::kRemove: return Remove(inv, console);
    case Command::kClusterStatus: return ClusterStatus(inv, console);
    case Command::kClusterAdd:
    case Command::kClusterPromote:
    case Command::kClusterRemove:
    case Command::kClusterTransfer:
    case Command::kReplicationSet: return Admin(inv, console);
    case Command::kLogin: return Login(inv, console);
    case Command::kLogout: return Logout(inv, console);
    case Command::kAuditList: return AuditList(inv, console);
    case Command::kAuditVerify: return AuditVerify(inv, console);
  }
  return kExitUsage;
}

}  // namespace dispotify::cli
