#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/file_system.h"

namespace dispotify::testsupport {
namespace {

namespace fs = std::filesystem;

bool IsExecutable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

bool HasServerBinaries(const std::string& dir) {
  return IsExecutable(dir + "/initdb") && IsExecutable(dir + "/pg_ctl") && IsExecutable(dir + "/postgres");
}

// $DISPOTIFY_PG_BINDIR, else the newest Debian /usr/lib/postgresql/<major>/bin, else PATH.
Result<std::string> FindBinDir() {
  if (const char* env = std::getenv("DISPOTIFY_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (HasServerBinaries(env)) return std::string(env);
    return Status::FailedPrecondition(std::string("DISPOTIFY_PG_BINDIR=") + env +
                                      " does not hold initdb, pg_ctl and postgres");
  }
  int best = -1;
  std::string best_dir;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(c) != 0; })) {
      continue;
    }
    const std::string bin = entry.path().string() + "/bin";
    if (int v = std::atoi(name.c_str()); v > best && HasServerBinaries(bin)) {
      best = v;
      best_dir = bin;
    }
  }
  if (best >= 0) return best_dir;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (!dir.empty() && HasServerBinaries(dir)) return dir;
    }
  }
  return Status::FailedPrecondition(
      "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or "
      "PATH: install Debian's `postgresql` package (scripts/install-deps.sh does) or set "
      "DISPOTIFY_PG_BINDIR");
}

// Binding port 0 lets the kernel pick a port that is free right now. Another process may take it
// before the server binds it; Start retries with a new port when that happens.
Result<uint16_t> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Status st = Status::FromErrno(errno, "bind 127.0.0.1:0");
    ::close(fd);
    return st;
  }
  ::close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A PostgreSQL configuration string literal.
std::string ConfQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string IdentQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string SqlLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::unique_ptr<PostgresServer>& SharedSlot() {
  static std::unique_ptr<PostgresServer> server;
  return server;
}

std::string& SharedError() {
  static std::string error;
  return error;
}

}  // namespace

PostgresSession::PostgresSession(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}

PostgresSession::~PostgresSession() {
  PQfinish(conn_);
}

Status PostgresSession::status() const {
  if (conn_ == nullptr) return Status::IoError("PQconnectdb: out of memory");
  if (PQstatus(conn_) != CONNECTION_OK) {
    return Status::Unavailable(std::string("connect: ") + PQerrorMessage(conn_));
  }
  return Status::Ok();
}

Status PostgresSession::Exec(std::string_view sql, std::string* value) {
  DISPOTIFY_RETURN_IF_ERROR(status());
  PGresult* res = PQexec(conn_, std::string(sql).c_str());
  const ExecStatusType rs = PQresultStatus(res);
  Status st;
  if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
    st = Status::IoError(std::string(sql) + ": " + PQresultErrorMessage(res));
  } else if (value != nullptr) {
    *value =
        (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0)) ? PQgetvalue(res, 0, 0) : "";
  }
  PQclear(res);
  return st;
}

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start(const PostgresOptions& options) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->options_ = options;
  Status st = server->Init();
  if (!st.ok()) return st;
  return server;
}

Status PostgresServer::Init() {
  auto bin = FindBinDir();
  if (!bin.ok()) return bin.status();
  bin_dir_ = *bin;

  if (::geteuid() == 0) {
    const char* env_user = std::getenv("DISPOTIFY_PG_USER");
    run_user_ = (env_user != nullptr && *env_user != '\0') ? env_user : "postgres";
    const passwd* pw = ::getpwnam(run_user_.c_str());
    if (pw == nullptr) {
      return Status::FailedPrecondition("running as root, and PostgreSQL refuses to: the user '" + run_user_ +
                                        "' to run it as does not exist (Debian's postgresql package "
                                        "creates 'postgres'; or set DISPOTIFY_PG_USER)");
    }
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    as_other_user_ = true;
  }

  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/dispotify-pg-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return Status::FromErrno(errno, "mkdtemp " + tmpl);
  dir_ = tmpl;
  data_dir_ = dir_ + "/data";
  if (as_other_user_ && ::chown(dir_.c_str(), uid_, gid_) != 0) {
    return Status::FromErrno(errno, "chown " + dir_ + " to " + run_user_);
  }
  StartWatchdog();
  if (as_other_user_ && !Run({"test", "-w", dir_}).ok()) {
    return Status::FailedPrecondition("the '" + run_user_ + "' user cannot reach " + dir_ +
                                      ": set TMPDIR to a directory it can traverse (e.g. /tmp)");
  }

  std::vector<std::string> initdb = {bin_dir_ + "/initdb", "-D",           data_dir_, "-U",
                                     "postgres",           "--auth=trust", "-E",      "UTF8",
                                     "--locale=C.UTF-8"};
  Status st = Run(initdb);
  if (!st.ok()) {
    // C.UTF-8 is built into glibc >= 2.35; elsewhere the plain C locale does as well for tests.
    std::error_code ec;
    fs::remove_all(data_dir_, ec);
    initdb.back() = "--locale=C";
    DISPOTIFY_RETURN_IF_ERROR(Run(initdb));
  }
  {
    std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
    conf << "\ninclude 'dispotify.conf'\n";
    if (!conf) return Status::IoError("cannot append to " + data_dir_ + "/postgresql.conf");
  }
  if (!options_.hba_lines.empty()) {
    std::ofstream hba(data_dir_ + "/pg_hba.conf", std::ios::app);
    for (const auto& line : options_.hba_lines) hba << line << "\n";
    if (!hba) return Status::IoError("cannot append to " + data_dir_ + "/pg_hba.conf");
  }
  std::string listen = "127.0.0.1";
  for (const auto& a : options_.extra_listen_addresses) listen += "," + a;

  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    port_ = *port;
    const std::string conf_path = data_dir_ + "/dispotify.conf";
    {
      std::ofstream conf(conf_path, std::ios::trunc);
      conf << "port = " << port_ << "\n"
           << "listen_addresses = '" << listen << "'\n"
           << "unix_socket_directories = " << ConfQuote(dir_) << "\n"
           << "fsync = on\n"
           << "max_connections = 100\n";
      if (!conf) return Status::IoError("cannot write " + conf_path);
    }
    if (as_other_user_ && ::chown(conf_path.c_str(), uid_, gid_) != 0) {
      return Status::FromErrno(errno, "chown " + conf_path);
    }
    last = StartServer();
    if (last.ok()) return Status::Ok();
    const std::string log = LogTail(dir_ + "/server.log");
    if (log.find("could not bind") == std::string::npos && log.find("in use") == std::string::npos) break;
  }
  return last;
}

PostgresServer::~PostgresServer() {
  if (running_) {
    (void)RunPgCtl({"-m", "immediate", "stop"});
    running_ = false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  if (watchdog_fd_ >= 0) ::close(watchdog_fd_);  // the watchdog finds nothing left to clean and exits
}

void PostgresServer::StartWatchdog() {
  std::string stop = ShellQuote(bin_dir_ + "/pg_ctl") + " -D " + ShellQuote(data_dir_) + " -m immediate stop";
  if (as_other_user_) {
    stop = "setpriv --reuid=" + std::to_string(uid_) + " --regid=" + std::to_string(gid_) +
           " --init-groups -- " + stop;
  }
  const std::string script = "read -r _; [ -f " + ShellQuote(data_dir_ + "/postmaster.pid") + " ] && " +
                             stop + "; rm -rf " + ShellQuote(dir_);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;  // no watchdog: the destructor still cleans up
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (pid == 0) {
    // Detached: its own session (a Ctrl-C to the test's process group must not kill it first)
    // and not a descendant of the test either (ctest kills the test's whole process tree on a
    // timeout): the intermediate child exits at once and the watchdog is reparented.
    ::setsid();
    const pid_t watchdog = ::fork();
    if (watchdog != 0) ::_exit(watchdog < 0 ? 1 : 0);
    ::dup2(fds[0], 0);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  watchdog_fd_ = fds[1];
}

Status PostgresServer::Run(const std::vector<std::string>& command) {
  std::vector<std::string> argv;
  if (as_other_user_) {
    argv = {"setpriv", "--reuid=" + std::to_string(uid_), "--regid=" + std::to_string(gid_), "--init-groups",
            "--"};
  }
  argv.insert(argv.end(), command.begin(), command.end());
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const std::string log_path = dir_ + "/commands.log";

  const pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (::chdir(dir_.c_str()) != 0) ::_exit(126);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "waitpid");
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return Status::Ok();
  std::string what;
  for (const auto& a : command) what += (what.empty() ? "" : " ") + a;
  return Status::IoError(what + " failed (status " + std::to_string(wstatus) + ")\n--- commands.log ---\n" +
                         LogTail(log_path) + "--- server.log ---\n" + LogTail(dir_ + "/server.log"));
}

Status PostgresServer::RunPgCtl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {bin_dir_ + "/pg_ctl", "-D", data_dir_, "-l",
                                   dir_ + "/server.log", "-w", "-t",      "60"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

Status PostgresServer::StartServer() {
  DISPOTIFY_RETURN_IF_ERROR(RunPgCtl({"start"}));
  running_ = true;
  return Status::Ok();
}

Status PostgresServer::StopServer() {
  DISPOTIFY_RETURN_IF_ERROR(RunPgCtl({"-m", "fast", "stop"}));
  running_ = false;
  return Status::Ok();
}

Status PostgresServer::RestartServer() {
  running_ = false;
  DISPOTIFY_RETURN_IF_ERROR(RunPgCtl({"-m", "fast", "restart"}));
  running_ = true;
  return Status::Ok();
}

std::string PostgresServer::LogTail(const std::string& path) const {
  auto read = ReadFileToString(DefaultFileSystem(), path);
  std::string all = read.ok() ? std::move(read).value() : "(no log: " + read.status().ToString() + ")";
  constexpr size_t kTail = 4000;
  return all.size() > kTail ? all.substr(all.size() - kTail) : all;
}

std::string PostgresServer::ConnInfo(std::string_view dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + std::string(dbname) +
         " connect_timeout=10";
}

std::string PostgresServer::UniqueDatabaseName(std::string_view hint) {
  std::string name;
  for (char c : hint) {
    const auto u = static_cast<unsigned char>(c);
    const char l = std::isalnum(u) != 0 ? static_cast<char>(std::tolower(u)) : '_';
    if (l == '_' && (name.empty() || name.back() == '_')) continue;
    name += l;
  }
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) name = "db_" + name;
  if (name.size() > 48) name.resize(48);
  return name + "_" + std::to_string(++db_counter_);
}

Result<std::string> PostgresServer::CreateDatabase(std::string_view name) {
  const bool valid = !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!valid) {
    return Status::InvalidArgument("database name must be 1..63 of [a-z0-9_]: " + std::string(name));
  }
  DISPOTIFY_RETURN_IF_ERROR(Execute("postgres", "CREATE DATABASE " + IdentQuote(name)));
  return ConnInfo(name);
}

Status PostgresServer::DropDatabase(std::string_view dbname) {
  return Execute("postgres", "DROP DATABASE IF EXISTS " + IdentQuote(dbname) + " WITH (FORCE)");
}

Status PostgresServer::Execute(std::string_view dbname, std::string_view sql) {
  PostgresSession conn(ConnInfo(dbname));
  return conn.Exec(sql);
}

Result<std::string> PostgresServer::QueryValue(std::string_view dbname, std::string_view sql) {
  PostgresSession conn(ConnInfo(dbname));
  std::string value;
  DISPOTIFY_RETURN_IF_ERROR(conn.Exec(sql, &value));
  return value;
}

Result<int> PostgresServer::TerminateConnections(std::string_view dbname) {
  auto n = QueryValue("postgres",
                      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = " +
                          SqlLiteral(dbname) + " AND pid <> pg_backend_pid()");
  if (!n.ok()) return n.status();
  return std::atoi(n->c_str());
}

PostgresServer* SharedPostgresServer() {
  return SharedSlot().get();
}

std::string SharedPostgresServerError() {
  return SharedSlot() != nullptr ? ""
         : SharedError().empty() ? "PostgresEnvironment was not registered"
                                 : SharedError();
}

void PostgresEnvironment::SetUp() {
  auto server = PostgresServer::Start();
  if (!server.ok()) {
    SharedError() = "cannot start the test PostgreSQL server: " + server.status().ToString();
    // Not fatal: a fatal failure here would make GoogleTest report every test as skipped. The
    // tests run, and each fails on SharedPostgresServer() == nullptr with this message.
    ADD_FAILURE() << SharedError();
    return;
  }
  SharedSlot() = std::move(server).value();
}

void PostgresEnvironment::TearDown() {
  SharedSlot().reset();
}

::testing::Environment* RegisterPostgresEnvironment() {
  static ::testing::Environment* const env = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment());
  return env;
}

std::string CurrentTestDatabaseHint() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "test";
  return std::string(info->test_suite_name()) + "_" + info->name();
}

}  // namespace dispotify::testsupport
