#include "cli/dispotify-pki/pki_tool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/status.h"
#include "common/tls/pki.h"

namespace dispotify::pki_tool {
namespace {

constexpr int kMaxDays = 36500;
constexpr mode_t kKeyMode = 0600;
constexpr mode_t kCertMode = 0644;
constexpr mode_t kDirMode = 0700;

constexpr std::string_view kUsage =
    "usage: dispotify-pki ca --out DIR --cluster ID --days N\n"
    "       dispotify-pki issue --ca DIR --out DIR --cluster ID (--node N | --kind KIND --name NAME)\n"
    "                           [--dns NAME]... [--ip ADDR]... --days N\n";

struct Args {
  std::string command;
  std::map<std::string, std::vector<std::string>> flags;

  std::optional<std::string> One(const std::string& name) const {
    auto it = flags.find(name);
    if (it == flags.end()) return std::nullopt;
    return it->second.back();
  }
  std::vector<std::string> All(const std::string& name) const {
    auto it = flags.find(name);
    return it == flags.end() ? std::vector<std::string>{} : it->second;
  }
};

Result<Args> Parse(const std::vector<std::string>& argv, const std::vector<std::string>& allowed,
                   const std::vector<std::string>& repeatable) {
  Args a;
  a.command = argv[0];
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& f = argv[i];
    if (!f.starts_with("--") || std::find(allowed.begin(), allowed.end(), f.substr(2)) == allowed.end()) {
      return Status::InvalidArgument("unknown argument: " + f);
    }
    if (i + 1 == argv.size()) return Status::InvalidArgument(f + " needs a value");
    std::string name = f.substr(2);
    auto& values = a.flags[name];
    if (!values.empty() && std::find(repeatable.begin(), repeatable.end(), name) == repeatable.end()) {
      return Status::InvalidArgument(f + " given twice");
    }
    values.push_back(argv[++i]);
  }
  return a;
}

Result<int> ParseDays(const Args& a) {
  auto text = a.One("days");
  if (!text) return Status::InvalidArgument("--days is required");
  const std::string_view digits = *text;
  int days = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), days);
  if (ec != std::errc() || end != digits.data() + digits.size() || days < 1 || days > kMaxDays) {
    return Status::InvalidArgument("--days must be a whole number from 1 to " + std::to_string(kMaxDays));
  }
  return days;
}

Result<std::string> Required(const Args& a, const std::string& name) {
  auto v = a.One(name);
  if (!v || v->empty()) return Status::InvalidArgument("--" + name + " is required");
  return *v;
}

Status EnsureDir(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return Status::Ok();
  if (::mkdir(dir.c_str(), kDirMode) != 0) return Status::FromErrno(errno, "mkdir " + dir);
  return Status::Ok();
}

// Written beside its final name with its final mode from the first byte (a key never exists, even
// briefly, readable by others), synced, then renamed over: readers see the old file or the new
// one, never a torn one.
Status WriteFileAtomically(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  auto fail = [&](std::string_view what) {
    Status s = Status::FromErrno(errno, std::string(what) + " " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  // The umask may have taken bits away; never added any.
  if (::fchmod(fd, mode) != 0) return fail("chmod");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    Status s = Status::FromErrno(errno, "close " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::FromErrno(errno, "rename " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

Status RunCa(const Args& a, std::ostream& out) {
  auto dir = Required(a, "out");
  if (!dir.ok()) return dir.status();
  auto cluster = Required(a, "cluster");
  if (!cluster.ok()) return cluster.status();
  auto days = ParseDays(a);
  if (!days.ok()) return days.status();
  const std::string key_path = *dir + "/ca.key";
  if (std::filesystem::exists(key_path)) {
    return Status::AlreadyExists(key_path + " exists; a new CA would orphan every certificate it issued");
  }
  auto ca = tls::CreateCa(*cluster, tls::Validity::Days(std::chrono::system_clock::now(), *days));
  if (!ca.ok()) return ca.status();
  auto cert_pem = tls::CertToPem(ca->cert.get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = tls::KeyToPem(ca->key.get());
  if (!key_pem.ok()) return key_pem.status();
  DISPOTIFY_RETURN_IF_ERROR(EnsureDir(*dir));
  DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(key_path, *key_pem, kKeyMode));
  DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(*dir + "/ca.crt", *cert_pem, kCertMode));
  out << "CA of cluster " << *cluster << " written to " << *dir << "/ca.crt and " << key_path << "\n";
  return Status::Ok();
}

Status RunIssue(const Args& a, std::ostream& out) {
  auto ca_dir = Required(a, "ca");
  if (!ca_dir.ok()) return ca_dir.status();
  auto dir = Required(a, "out");
  if (!dir.ok()) return dir.status();
  auto cluster = Required(a, "cluster");
  if (!cluster.ok()) return cluster.status();
  auto days = ParseDays(a);
  if (!days.ok()) return days.status();

  tls::Identity id;
  auto node = a.One("node");
  auto kind = a.One("kind");
  auto name = a.One("name");
  if (node && !kind && !name) {
    id = tls::Identity{*cluster, std::string(tls::kNodeKind), *node};
  } else if (!node && kind && name) {
    id = tls::Identity{*cluster, *kind, *name};
  } else {
    return Status::InvalidArgument("give either --node N or both --kind and --name");
  }

  auto ca_cert_pem = ReadFile(*ca_dir + "/ca.crt");
  if (!ca_cert_pem.ok()) return ca_cert_pem.status();
  auto ca_key_pem = ReadFile(*ca_dir + "/ca.key");
  if (!ca_key_pem.ok()) return ca_key_pem.status();
  auto ca_cert = tls::CertFromPem(*ca_cert_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = tls::KeyFromPem(*ca_key_pem);
  if (!ca_key.ok()) return ca_key.status();
  tls::CertifiedKey ca{std::move(ca_cert).value(), std::move(ca_key).value()};

  tls::LeafRequest req{id, a.All("dns"), a.All("ip"),
                       tls::Validity::Days(std::chrono::system_clock::now(), *days)};
  auto leaf = tls::IssueLeaf(ca, req);
  if (!leaf.ok()) return leaf.status();
  auto cert_pem = tls::CertToPem(leaf->cert.get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = tls::KeyToPem(leaf->key.get());
  if (!key_pem.ok()) return key_pem.status();

  DISPOTIFY_RETURN_IF_ERROR(EnsureDir(*dir));
  DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(*dir + "/ca.crt", *ca_cert_pem, kCertMode));
  DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(*dir + "/tls.key", *key_pem, kKeyMode));
  DISPOTIFY_RETURN_IF_ERROR(WriteFileAtomically(*dir + "/tls.crt", *cert_pem, kCertMode));
  out << id.Uri() << " written to " << *dir << "/tls.crt and " << *dir << "/tls.key\n";
  return Status::Ok();
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? err : out) << kUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  Result<Args> parsed = Status::InvalidArgument("unknown command: " + args[0]);
  if (args[0] == "ca") {
    parsed = Parse(args, {"out", "cluster", "days"}, {});
  } else if (args[0] == "issue") {
    parsed =
        Parse(args, {"ca", "out", "cluster", "node", "kind", "name", "dns", "ip", "days"}, {"dns", "ip"});
  }
  if (!parsed.ok()) {
    err << "dispotify-pki: " << parsed.status().message() << "\n" << kUsage;
    return kExitUsage;
  }
  Status s = parsed->command == "ca" ? RunCa(*parsed, out) : RunIssue(*parsed, out);
  if (s.ok()) return kExitOk;
  err << "dispotify-pki: " << s.message() << "\n";
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

}  // namespace dispotify::pki_tool
