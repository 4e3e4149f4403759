#pragma once
// The JSON answers of the REST API (docs/openapi.yaml) that dispotifyctl shows as text, read into
// plain structs. Unknown fields are ignored and missing optional ones keep their defaults, so an
// older or newer server still prints.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/dispotifyctl/format.h"
#include "common/status.h"

namespace dispotify::cli {

// A Song object.
Result<SongRow> ParseSong(std::string_view json);

// A page of GET /admin/audit: each entry's exact stored bytes (decoded from base64), where to go
// on, and the node's head and checkpoint of the chain.
struct AuditPage {
  std::vector<std::string> raw;
  std::optional<uint64_t> next_after;
  uint64_t head_seq = 0;
  std::string head_hash;  // 64 hex digits
  uint64_t checkpoint_seq = 0;
  std::string checkpoint_hash;
  std::string items_json;  // the items array as the server sent it (for --json and the table)
};
Result<AuditPage> ParseAuditPage(std::string_view json);

// The string field `key` of a JSON object answer (a login's csrf_token, a new token's secret);
// kInvalidArgument when the answer is not an object or has no such string.
Result<std::string> StringField(std::string_view json, const char* key);

struct SongPage {
  std::vector<SongRow> items;
  uint64_t total = 0;  // search only
  std::string next;    // next_after (songs) or next_cursor (search); empty on the last page
};

// {"items":[...], "next_after":"..."} of GET /music/songs, or {"total":N, "items":[...],
// "next_cursor":"..."} of GET /music/search.
Result<SongPage> ParseSongPage(std::string_view json);

// GET /cluster/status.
Result<ClusterStatusView> ParseClusterStatus(std::string_view json);

// {"items":[...]} with the items of several pages, each song's JSON kept as it came; with
// "total" first when given (search).
Result<std::string> MergeItems(const std::vector<std::string>& pages,
                               std::optional<uint64_t> total = std::nullopt);

}  // namespace dispotify::cli
