#pragma once
// A throwaway PostgreSQL server for tests: the real server binaries (initdb, pg_ctl, postgres) in a
// temp directory, on a free loopback port. Never a mock.
//
//   <tmp>/data           the cluster (initdb -U postgres --auth=trust -E UTF8 --locale=C.UTF-8)
//   <tmp>/data/dispotify.conf  port, listen_addresses=127.0.0.1 (+ PostgresOptions),
//   unix_socket_directories=<tmp>,
//                        fsync=on (included from postgresql.conf, so pg_ctl restart keeps them)
//   <tmp>/server.log     the server's log; <tmp>/commands.log the output of initdb / pg_ctl
//
// Binaries: $DISPOTIFY_PG_BINDIR, else the newest /usr/lib/postgresql/<v>/bin (Debian), else PATH.
// Not found -> Start() fails with a message naming the package; tests never skip silently.
//
// PostgreSQL refuses to run as root: when euid == 0 every server command runs as the `postgres`
// user (or $DISPOTIFY_PG_USER) through `setpriv --reuid --regid --init-groups`, and the temp
// directory is handed to that user.
//
// Cleanup: the destructor stops the server (pg_ctl stop -m immediate) and removes the directory.
// If the test process dies without running it (crash, SIGKILL from a ctest timeout), a watchdog
// process started beside the server notices the closed pipe to its parent and does the same. It
// is detached (own session, reparented to init), as ctest kills a timed-out test's whole process
// tree; the server itself is daemonized by pg_ctl.
//
// One server per test binary: register PostgresEnvironment (RegisterPostgresEnvironment()) and
// ask SharedPostgresServer() for it; each test case creates its own database. Binaries started
// in parallel (ctest -j) each get their own server and port.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct pg_conn;  // libpq's PGconn

namespace dispotify::testsupport {

// One libpq connection held open by a test, e.g. to keep a transaction (and its locks) open
// while the code under test runs.
class PostgresSession {
 public:
  explicit PostgresSession(const std::string& conninfo);
  ~PostgresSession();
  PostgresSession(const PostgresSession&) = delete;
  PostgresSession& operator=(const PostgresSession&) = delete;

  Status status() const;
  // Runs `sql` (one or more statements); the first column of the first row goes to *value.
  Status Exec(std::string_view sql, std::string* value = nullptr);

 private:
  ::pg_conn* conn_;
};

struct PostgresOptions {
  // Addresses to listen on besides 127.0.0.1 (e.g. the gateway of a test network the clients
  // live behind); each must exist on this machine when the server starts.
  std::vector<std::string> extra_listen_addresses;
  // Lines appended to pg_hba.conf, e.g. "host all dispotify 10.244.0.0/16 scram-sha-256"
  // (loopback stays trusted for the superuser).
  std::vector<std::string> hba_lines;
};

class PostgresServer {
 public:
  // initdb + start. Fails with a clear message when the binaries are missing.
  static Result<std::unique_ptr<PostgresServer>> Start(const PostgresOptions& options = {});
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // A libpq connection string for `dbname` as the superuser over TCP on loopback.
  std::string ConnInfo(std::string_view dbname) const;

  // A database name not used before on this server: `hint` sanitised (lowercase letters, digits
  // and '_'; at most 63 bytes) with a counter appended.
  std::string UniqueDatabaseName(std::string_view hint);
  // Creates the empty database `name` ([a-z0-9_], at most 63 bytes) and returns its connection
  // string.
  Result<std::string> CreateDatabase(std::string_view name);
  // Drops a database created above, disconnecting whoever is still connected (WITH (FORCE)).
  Status DropDatabase(std::string_view dbname);
  // Runs `sql` (one or more statements) as the superuser in `dbname`.
  Status Execute(std::string_view dbname, std::string_view sql);
  // Runs a query and returns the first column of its first row ("" when no row or NULL).
  Result<std::string> QueryValue(std::string_view dbname, std::string_view sql);
  // Kills every backend serving `dbname` except the caller's own (pg_terminate_backend): from
  // the client's side the connection drops at once, as when the server process dies.
  Result<int> TerminateConnections(std::string_view dbname);

  // pg_ctl stop -m fast / start (same port) / restart -m fast.
  Status StopServer();
  Status StartServer();
  Status RestartServer();
  bool running() const { return running_; }

 private:
  PostgresServer() = default;
  Status Init();
  Status RunPgCtl(const std::vector<std::string>& args);
  // Runs argv (as the server user when root), output appended to commands.log.
  Status Run(const std::vector<std::string>& argv);
  void StartWatchdog();
  std::string LogTail(const std::string& path) const;

  std::string bin_dir_;
  std::string dir_;
  std::string data_dir_;
  uint16_t port_ = 0;
  bool running_ = false;
  bool as_other_user_ = false;  // root: commands go through setpriv
  std::string run_user_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  PostgresOptions options_;
  int db_counter_ = 0;
  int watchdog_fd_ = -1;  // write end of the watchdog's pipe
};

// The server shared by the test cases of one binary; null until PostgresEnvironment::SetUp ran,
// and when it failed (then every test using it must fail, with SharedPostgresServerError()).
PostgresServer* SharedPostgresServer();
// Why SharedPostgresServer() is null, for test failure messages.
std::string SharedPostgresServerError();

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
};

// Registers PostgresEnvironment once; returns it. Call from a namespace-scope initializer in the
// test file (`const auto* kPg = dispotify::testsupport::RegisterPostgresEnvironment();`).
::testing::Environment* RegisterPostgresEnvironment();

// "<suite>_<test>" of the running test case, a hint for UniqueDatabaseName.
std::string CurrentTestDatabaseHint();

}  // namespace dispotify::testsupport
