// dispotifyctl's command line: options anywhere, defaults from the environment, each command's
// operands, and clear refusals.

#include "cli/dispotifyctl/args.h"

#include <gtest/gtest.h>

namespace dispotify::cli {
namespace {

Result<Invocation> Parse(std::vector<std::string> args, Environment env = {}) {
  return ParseArgs(args, env);
}

TEST(ArgsTest, DefaultsWithoutEnvironment) {
  auto inv = Parse({"ls"});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  EXPECT_EQ(inv->command, Command::kList);
  EXPECT_EQ(inv->endpoints, std::vector<std::string>{"http://127.0.0.1:8081"});
  EXPECT_EQ(inv->token, "");
  EXPECT_EQ(inv->timeout, kDefaultTimeout);
  EXPECT_FALSE(inv->json);
  EXPECT_FALSE(inv->limit.has_value());
}

TEST(ArgsTest, EnvironmentGivesDefaultsAndFlagsWin) {
  Environment env{"http://a:1, b:2/", "secret"};
  auto inv = Parse({"ls"}, env);
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->endpoints, (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_EQ(inv->token, "secret");

  inv = Parse({"--endpoints", "https://c:3", "--token=other", "ls"}, env);
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->endpoints, std::vector<std::string>{"https://c:3"});
  EXPECT_EQ(inv->token, "other");
}

TEST(ArgsTest, CaFileFromFlagOrEnvironment) {
  auto none = Parse({"ls"});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ca_file, "");
  Environment env;
  env.ca_file = "/etc/dispotify/ca.crt";
  auto from_env = Parse({"-e", "https://n1:8443", "ls"}, env);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->ca_file, "/etc/dispotify/ca.crt");
  auto flag = Parse({"ls", "--ca-file=other.crt"}, env);
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->ca_file, "other.crt");
}

TEST(ArgsTest, OptionsMayFollowTheCommand) {
  auto inv = Parse({"search", "hey", "jude", "--limit", "5", "--json", "-t", "2.5", "-e", "x:1"});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  EXPECT_EQ(inv->command, Command::kSearch);
  EXPECT_EQ(inv->operands, std::vector<std::string>{"hey jude"});
  EXPECT_EQ(inv->limit, 5u);
  EXPECT_TRUE(inv->json);
  EXPECT_EQ(inv->timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(inv->endpoints, std::vector<std::string>{"http://x:1"});
}

TEST(ArgsTest, DoubleDashEndsOptions) {
  auto inv = Parse({"upload", "--", "--weird name.mp3", "-"});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  EXPECT_EQ(inv->operands, (std::vector<std::string>{"--weird name.mp3", "-"}));
}

TEST(ArgsTest, Upload) {
  auto inv = Parse({"upload", "a.mp3", "dir"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kUpload);
  EXPECT_EQ(inv->operands, (std::vector<std::string>{"a.mp3", "dir"}));
  EXPECT_FALSE(inv->replace);
  EXPECT_FALSE(Parse({"upload"}).ok());

  inv = Parse({"upload", "--replace", "dir"});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(inv->replace);
  EXPECT_FALSE(Parse({"ls", "--replace"}).ok());
  EXPECT_FALSE(Parse({"upload", "--replace=yes", "dir"}).ok());
}

TEST(ArgsTest, StaleAppliesToReadsOnly) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"ls", "--stale"}, {"search", "abba", "--stale"}, {"--stale", "stream", "x.mp3", "-o", "-"}}) {
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << args[0] << ": " << inv.status().ToString();
    EXPECT_TRUE(inv->stale);
  }
  EXPECT_FALSE(Parse({"ls"})->stale);
  EXPECT_FALSE(Parse({"upload", "x.mp3", "--stale"}).ok());
  EXPECT_FALSE(Parse({"rm", "x.mp3", "--stale"}).ok());
  EXPECT_FALSE(Parse({"cluster", "status", "--stale"}).ok());
}

TEST(ArgsTest, Stream) {
  auto inv = Parse({"stream", "Hey-Jude.mp3", "-o", "-"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kStream);
  EXPECT_EQ(inv->output, "-");
  EXPECT_FALSE(inv->resume);

  inv = Parse({"stream", "x.mp3", "--output=out.mp3", "--resume"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->output, "out.mp3");
  EXPECT_TRUE(inv->resume);

  EXPECT_FALSE(Parse({"stream"}).ok());
  EXPECT_FALSE(Parse({"stream", "a", "b"}).ok());
  EXPECT_FALSE(Parse({"stream", "x.mp3", "--resume"}).ok());  // nothing to resume on stdout
  EXPECT_FALSE(Parse({"stream", "../etc/passwd"}).ok());      // not a file id
  EXPECT_FALSE(Parse({"stream", ".."}).ok());

  // --sha256 names the content; any case in, lowercase out.
  const std::string upper(64, 'A');
  inv = Parse({"stream", "x.mp3", "--sha256", upper, "-o", "-"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->sha256, std::string(64, 'a'));
  EXPECT_EQ(Parse({"stream", "x.mp3"})->sha256, std::nullopt);
  EXPECT_FALSE(Parse({"stream", "x.mp3", "--sha256", "abc"}).ok());
  EXPECT_FALSE(Parse({"stream", "x.mp3", "--sha256", std::string(64, 'g')}).ok());
  EXPECT_FALSE(Parse({"ls", "--sha256", std::string(64, 'a')}).ok());
}

TEST(ArgsTest, RemoveChecksEveryId) {
  auto inv = Parse({"rm", "a.mp3", "b.flac"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kRemove);
  EXPECT_EQ(inv->operands.size(), 2u);
  auto bad = Parse({"rm", "a.mp3", "b c"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'b c' is not a file id"), std::string::npos);
}

TEST(ArgsTest, ClusterCommands) {
  auto inv = Parse({"cluster", "status"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kClusterStatus);

  inv = Parse({"cluster", "add", "4", "10.0.0.4:7004"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kClusterAdd);
  EXPECT_EQ(inv->node_id, 4u);
  EXPECT_EQ(inv->address, "10.0.0.4:7004");

  inv = Parse({"cluster", "promote", "4"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kClusterPromote);
  inv = Parse({"cluster", "remove", "4"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kClusterRemove);

  inv = Parse({"cluster", "transfer"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kClusterTransfer);
  EXPECT_EQ(inv->node_id, 0u);
  inv = Parse({"cluster", "transfer", "2"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->node_id, 2u);

  EXPECT_FALSE(Parse({"cluster"}).ok());
  EXPECT_FALSE(Parse({"cluster", "add", "4"}).ok());
  EXPECT_FALSE(Parse({"cluster", "add", "4", "nohostport"}).ok());
  EXPECT_FALSE(Parse({"cluster", "promote", "0"}).ok());
  EXPECT_FALSE(Parse({"cluster", "promote", "x"}).ok());
  EXPECT_FALSE(Parse({"cluster", "status", "extra"}).ok());
}

TEST(ArgsTest, ReplicationSet) {
  auto inv = Parse({"replication", "set", "3"});
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->command, Command::kReplicationSet);
  EXPECT_EQ(inv->factor, 3u);
  EXPECT_FALSE(Parse({"replication", "set", "0"}).ok());
  EXPECT_FALSE(Parse({"replication", "set", "17"}).ok());
  EXPECT_FALSE(Parse({"replication", "get"}).ok());
}

TEST(ArgsTest, Help) {
  for (auto args : std::vector<std::vector<std::string>>{{}, {"help"}, {"--help"}, {"ls", "-h"}}) {
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok());
    EXPECT_EQ(inv->command, Command::kHelp);
  }
  EXPECT_NE(UsageText().find("cluster transfer"), std::string::npos);
}

TEST(ArgsTest, Refusals) {
  auto unknown = Parse({"frobnicate"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown command 'frobnicate'"), std::string::npos);
  auto option = Parse({"ls", "--colour"});
  ASSERT_FALSE(option.ok());
  EXPECT_NE(option.status().message().find("unknown option '--colour'"), std::string::npos);
  EXPECT_FALSE(Parse({"ls", "--limit"}).ok());                // missing value
  EXPECT_FALSE(Parse({"ls", "--limit", "0"}).ok());           // out of range
  EXPECT_FALSE(Parse({"ls", "--limit", "5x"}).ok());          // not a number
  EXPECT_FALSE(Parse({"ls", "--json=yes"}).ok());             // a flag takes no value
  EXPECT_FALSE(Parse({"rm", "a.mp3", "--limit", "3"}).ok());  // not an option of rm
  EXPECT_FALSE(Parse({"ls", "-o", "x"}).ok());
  EXPECT_FALSE(Parse({"ls", "--timeout", "0"}).ok());
  EXPECT_FALSE(Parse({"ls", "--timeout", "soon"}).ok());
  EXPECT_FALSE(Parse({"ls", "--endpoints", " , "}).ok());
  EXPECT_FALSE(Parse({"ls", "--endpoints", "ftp://x:1"}).ok());
}

TEST(ArgsTest, ParseEndpoints) {
  auto eps = ParseEndpoints("http://127.0.0.1:8081,http://127.0.0.1:8082");
  ASSERT_TRUE(eps.ok());
  EXPECT_EQ(*eps, (std::vector<std::string>{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}));
  eps = ParseEndpoints("node1:8081//,,https://node2:443");
  ASSERT_TRUE(eps.ok());
  EXPECT_EQ(*eps, (std::vector<std::string>{"http://node1:8081", "https://node2:443"}));
  EXPECT_FALSE(ParseEndpoints("").ok());
  EXPECT_FALSE(ParseEndpoints("http://").ok());
}

TEST(ArgsTest, ParseTimeout) {
  EXPECT_EQ(*ParseTimeout("2"), std::chrono::milliseconds(2000));
  EXPECT_EQ(*ParseTimeout("0.25"), std::chrono::milliseconds(250));
  EXPECT_EQ(*ParseTimeout("0.0001"), std::chrono::milliseconds(1));
  EXPECT_FALSE(ParseTimeout("-1").ok());
  EXPECT_FALSE(ParseTimeout("inf").ok());
  EXPECT_FALSE(ParseTimeout("1e9").ok());
  EXPECT_FALSE(ParseTimeout("").ok());
}

}  // namespace
TEST(ArgsTest, LoginAndLogout) {
  Environment env{"", "", "/home/u/.config/dispotify/token"};
  auto inv = Parse({"login", "alice", "--password-stdin"}, env);
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  EXPECT_EQ(inv->command, Command::kLogin);
  EXPECT_EQ(inv->operands, std::vector<std::string>{"alice"});
  EXPECT_TRUE(inv->password_stdin);
  EXPECT_EQ(inv->token_file, "/home/u/.config/dispotify/token");
  EXPECT_EQ(Parse({"logout"})->command, Command::kLogout);
  EXPECT_FALSE(Parse({"login"}).ok());
  EXPECT_FALSE(Parse({"login", "a", "b"}).ok());
  EXPECT_FALSE(Parse({"logout", "x"}).ok());
  EXPECT_FALSE(Parse({"ls", "--password-stdin"}).ok());
}

}  // namespace dispotify::cli
