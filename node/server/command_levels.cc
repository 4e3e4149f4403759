#include "node/server/command_levels.h"

#include <algorithm>
#include <string>

namespace dispotify::server {

Status CheckMembersSpeak(uint32_t needed, std::string_view what, const consensus::ConfState& conf,
                         NodeId self, const std::map<NodeId, uint32_t>& heard) {
  if (needed <= 1) return Status::Ok();  // every version speaks level 1
  for (const auto& [id, member] : conf.members) {
    if (id == self) continue;
    auto it = heard.find(id);
    const uint32_t level = it == heard.end() ? 1 : std::max<uint32_t>(it->second, 1);
    if (level < needed) {
      return Status::Unavailable(
          std::string(what) + " needs command level " + std::to_string(needed) + ", and node " +
          std::to_string(id.value()) +
          (it == heard.end() ? " has not said which it speaks" : " speaks " + std::to_string(level)) +
          ": finish upgrading every member first");
    }
  }
  return Status::Ok();
}

}  // namespace dispotify::server
