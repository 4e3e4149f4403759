#include "node/server/command_levels.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "node/server/catalog_proposer.h"

namespace dispotify::server {
namespace {

consensus::ConfState Members(std::initializer_list<uint64_t> ids) {
  consensus::ConfState conf;
  for (uint64_t id : ids) conf.members[NodeId(id)] = consensus::Member{"", true, ""};
  return conf;
}

// One body of each kind of the catalog's commands.
template <size_t... I>
std::vector<catalog::CommandBody> EveryKind(std::index_sequence<I...>) {
  return {catalog::CommandBody(std::in_place_index<I>)...};
}

TEST(CommandLevelsTest, EveryKindHasALevelThisVersionSpeaks) {
  const auto bodies = EveryKind(std::make_index_sequence<std::variant_size_v<catalog::CommandBody>>{});
  for (const auto& body : bodies) {
    EXPECT_GE(catalog::CommandLevelOf(body), 1u) << body.index();
    EXPECT_LE(catalog::CommandLevelOf(body), catalog::kCommandLevel) << body.index();
    EXPECT_STRNE(catalog::CommandName(body), "") << body.index();
  }
}

TEST(CommandLevelsTest, ACommandWaitsUntilEveryMemberSpeaksItsLevel) {
  const auto conf = Members({1, 2, 3});
  const NodeId self(1);
  // Level 1: every version, whatever was heard.
  EXPECT_TRUE(CheckMembersSpeak(1, "put-song", conf, self, {}).ok());
  // Level 2: every other member said 2 or more.
  EXPECT_TRUE(CheckMembersSpeak(2, "x", conf, self, {{NodeId(2), 2}, {NodeId(3), 3}}).ok());
  // One still at 1, or a version before levels (0), or never heard: refused, naming it.
  for (const auto& heard : std::vector<std::map<NodeId, uint32_t>>{
           {{NodeId(2), 2}, {NodeId(3), 1}}, {{NodeId(2), 2}, {NodeId(3), 0}}, {{NodeId(2), 2}}}) {
    const Status st = CheckMembersSpeak(2, "new-thing", conf, self, heard);
    ASSERT_EQ(st.code(), StatusCode::kUnavailable);  // 503: retry once the upgrade is done
    EXPECT_NE(st.message().find("new-thing needs command level 2"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("node 3"), std::string::npos) << st.message();
  }
  // Self is not asked (the leader speaks its own level); a non-member's level does not count.
  EXPECT_TRUE(CheckMembersSpeak(2, "x", Members({1}), self, {{NodeId(9), 1}}).ok());
}

// The leader prepares every command it proposes (its own and its followers'): the gate decides
// there, before anything reaches the log.
TEST(CommandLevelsTest, TheLeaderRefusesWhatTheGateRefuses) {
  const std::string command =
      catalog::EncodeCommand(catalog::Command{1, catalog::SetReplicationFactorCmd{2}});
  std::string asked;
  const CommandLevelGate refuse = [&](const catalog::CommandBody& body) {
    asked = catalog::CommandName(body);
    return Status::FailedPrecondition("node 3 speaks 1");
  };
  auto refused = PrepareCatalogCommand(command, refuse);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(asked, "set-replication-factor");
  auto passed = PrepareCatalogCommand(command, [](const catalog::CommandBody&) { return Status::Ok(); });
  ASSERT_TRUE(passed.ok()) << passed.status().ToString();
  auto decoded = catalog::DecodeCommand(*passed);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(std::holds_alternative<catalog::SetReplicationFactorCmd>(decoded->body));
}

}  // namespace
}  // namespace dispotify::server
