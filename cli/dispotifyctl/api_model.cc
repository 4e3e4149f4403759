#include "cli/dispotifyctl/api_model.h"

#include <cpprest/json.h>

#include "common/base64.h"

namespace dispotify::cli {
namespace {

using web::json::value;

Result<value> Parse(std::string_view json) {
  try {
    value v = value::parse(std::string(json));
    if (!v.is_object()) return Status::InvalidArgument("the server's answer is not a JSON object");
    return v;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("the server's answer is not JSON: ") + e.what());
  }
}

std::string Str(const value& obj, const char* key) {
  if (!obj.has_field(key) || !obj.at(key).is_string()) return "";
  return obj.at(key).as_string();
}

// A non-negative integer field; `fallback` when absent or of another type.
int64_t Int(const value& obj, const char* key, int64_t fallback = 0) {
  if (!obj.has_field(key) || !obj.at(key).is_number()) return fallback;
  const auto& n = obj.at(key).as_number();
  if (!n.is_integral()) return fallback;
  return n.is_int64() ? n.to_int64() : static_cast<int64_t>(n.to_uint64());
}

uint64_t Uint(const value& obj, const char* key) {
  const int64_t v = Int(obj, key);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

SongRow SongFrom(const value& s) {
  SongRow row;
  row.file_id = Str(s, "file_id");
  row.title = Str(s, "title");
  row.artist = Str(s, "artist");
  row.album = Str(s, "album");
  row.duration_ms = Uint(s, "duration_ms");
  row.size_bytes = Uint(s, "size_bytes");
  row.sha256 = Str(s, "sha256");
  row.album_id = Str(s, "album_id");
  return row;
}

}  // namespace

Result<AuditPage> ParseAuditPage(std::string_view json) {
  auto v = Parse(json);
  if (!v.ok()) return v.status();
  if (!v->has_field("items") || !v->at("items").is_array() || !v->has_field("head") ||
      !v->has_field("checkpoint")) {
    return Status::InvalidArgument("the server's answer is not an audit page");
  }
  AuditPage page;
  for (const auto& item : v->at("items").as_array()) {
    auto raw = Base64Decode(Str(item, "raw"));
    if (!raw) return Status::InvalidArgument("an audit item's raw bytes are not base64");
    page.raw.push_back(std::move(*raw));
  }
  if (v->at("next_after").is_number()) page.next_after = static_cast<uint64_t>(Int(*v, "next_after"));
  page.head_seq = static_cast<uint64_t>(Int(v->at("head"), "seq"));
  page.head_hash = Str(v->at("head"), "hash");
  page.checkpoint_seq = static_cast<uint64_t>(Int(v->at("checkpoint"), "seq"));
  page.checkpoint_hash = Str(v->at("checkpoint"), "hash");
  page.items_json = v->at("items").serialize();
  return page;
}

Result<std::string> StringField(std::string_view json, const char* key) {
  auto v = Parse(json);
  if (!v.ok()) return v.status();
  if (!v->has_field(key) || !v->at(key).is_string()) {
    return Status::InvalidArgument(std::string("the server's answer has no \"") + key + "\"");
  }
  return v->at(key).as_string();
}

Result<SongRow> ParseSong(std::string_view json) {
  auto v = Parse(json);
  if (!v.ok()) return v.status();
  if (Str(*v, "file_id").empty()) return Status::InvalidArgument("the answer names no file_id");
  return SongFrom(*v);
}

Result<SongPage> ParseSongPage(std::string_view json) {
  auto v = Parse(json);
  if (!v.ok()) return v.status();
  if (!v->has_field("items") || !v->at("items").is_array())
    return Status::InvalidArgument("the answer has no items array");
  SongPage page;
  for (const auto& item : v->at("items").as_array()) {
    if (item.is_object()) page.items.push_back(SongFrom(item));
  }
  page.total = Uint(*v, "total");
  page.next = v->has_field("next_after") ? Str(*v, "next_after") : Str(*v, "next_cursor");
  return page;
}

Result<ClusterStatusView> ParseClusterStatus(std::string_view json) {
  auto v = Parse(json);
  if (!v.ok()) return v.status();
  ClusterStatusView s;
  s.node_id = Uint(*v, "node_id");
  s.role = Str(*v, "role");
  s.term = Uint(*v, "term");
  s.leader_id = Uint(*v, "leader_id");
  s.leader_address = Str(*v, "leader_address");
  s.commit_index = Uint(*v, "commit_index");
  s.applied_index = Uint(*v, "applied_index");
  s.replication_factor = Uint(*v, "replication_factor");
  s.songs = Int(*v, "songs", -1);
  s.bytes = Int(*v, "bytes", -1);
  if (v->has_field("repair") && v->at("repair").is_object()) {
    s.under_replicated = Int(v->at("repair"), "under_replicated", -1);
    s.unavailable = Int(v->at("repair"), "unavailable", -1);
  }
  if (v->has_field("members") && v->at("members").is_array()) {
    for (const auto& m : v->at("members").as_array()) {
      if (!m.is_object()) continue;
      MemberRow row;
      row.node_id = Uint(m, "node_id");
      row.address = Str(m, "address");
      row.role = Str(m, "role");
      row.healthy = m.has_field("healthy") && m.at("healthy").is_boolean() && m.at("healthy").as_bool();
      row.match_index = Uint(m, "match_index");
      row.files = Int(m, "files", -1);
      s.members.push_back(std::move(row));
    }
  }
  // The answering node reports its own files under "local", not among the peers.
  if (v->has_field("local") && v->at("local").is_object()) {
    for (auto& m : s.members) {
      if (m.node_id == s.node_id && m.files < 0) m.files = Int(v->at("local"), "files", -1);
    }
  }
  return s;
}

Result<std::string> MergeItems(const std::vector<std::string>& pages, std::optional<uint64_t> total) {
  value items = value::array();
  size_t n = 0;
  for (const auto& page : pages) {
    auto v = Parse(page);
    if (!v.ok()) return v.status();
    if (!v->has_field("items") || !v->at("items").is_array()) continue;
    for (const auto& item : v->at("items").as_array()) items[n++] = item;
  }
  value out = value::object(true);  // keep the insertion order: total, then items
  if (total) out["total"] = value::number(*total);
  out["items"] = items;
  return out.serialize();
}

}  // namespace dispotify::cli
