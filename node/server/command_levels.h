#pragma once
// The leader's check before it proposes a catalog command (node/catalog/commands.h, "command
// level"): during a rolling upgrade, a command of a kind that some member's version does not know
// would fail to apply there, and that member's catalog would drift from the others'.

#include <cstdint>
#include <functional>
#include <map>
#include <string_view>

#include "common/ids.h"
#include "common/status.h"
#include "node/catalog/commands.h"
#include "node/consensus/types.h"

namespace dispotify::server {

// OK when every member of `conf` but `self` has said it speaks at least `needed` (`heard`: what
// each peer last sent; 0 or absent counts as level 1, the level of every version before levels).
// FailedPrecondition naming the first member that has not, and what it runs.
Status CheckMembersSpeak(uint32_t needed, std::string_view what, const consensus::ConfState& conf,
                         NodeId self, const std::map<NodeId, uint32_t>& heard);

// What PrepareCatalogCommand asks before it lets a command through; empty: everything passes.
using CommandLevelGate = std::function<Status(const catalog::CommandBody& body)>;

}  // namespace dispotify::server
