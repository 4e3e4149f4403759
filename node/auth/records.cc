#include "node/auth/records.h"

#include <cpprest/json.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "common/base64.h"
#include "common/sha256.h"

namespace dispotify::auth {
namespace {

namespace json = web::json;

json::value RolesJson(const std::vector<Role>& roles) {
  std::vector<json::value> names;
  names.reserve(roles.size());
  for (Role r : roles) names.push_back(json::value::string(RoleName(r)));
  return json::value::array(names);
}

// Reads a JSON document written by Encode*; the exceptions of cpprest stop here.
Result<json::value> ParseObject(std::string_view text, const char* what) {
  try {
    json::value v = json::value::parse(std::string(text));
    if (!v.is_object()) return Status::Corruption(std::string(what) + " record is not a JSON object");
    return v;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string(what) + " record does not parse: " + e.what());
  }
}

Result<std::vector<Role>> RolesOf(const json::value& obj, const char* what) {
  if (!obj.has_field("roles") || !obj.at("roles").is_array()) {
    return Status::Corruption(std::string(what) + " record has no roles");
  }
  std::vector<std::string> names;
  for (const auto& v : obj.at("roles").as_array()) {
    if (!v.is_string()) return Status::Corruption(std::string(what) + " record has a bad role");
    names.push_back(v.as_string());
  }
  auto roles = ParseRoles(names);
  if (!roles.ok()) return Status::Corruption(std::string(what) + " record: " + roles.status().message());
  return roles;
}

std::string StringField(const json::value& obj, const char* key) {
  return obj.has_field(key) && obj.at(key).is_string() ? obj.at(key).as_string() : std::string();
}

int64_t IntField(const json::value& obj, const char* key) {
  return obj.has_field(key) && obj.at(key).is_number() ? obj.at(key).as_number().to_int64() : 0;
}

}  // namespace

std::string EncodeUser(const UserRecord& user) {
  json::value v = json::value::object();
  v["name"] = json::value::string(user.name);
  v["roles"] = RolesJson(user.roles);
  v["password"] = json::value::string(user.password_hash);
  v["disabled"] = json::value::boolean(user.disabled);
  v["created_ms"] = json::value::number(user.created_ms);
  if (user.oidc) v["oidc"] = json::value::boolean(true);  // absent in the records of before
  return v.serialize();
}

Result<UserRecord> DecodeUser(std::string_view text) {
  auto obj = ParseObject(text, "user");
  if (!obj.ok()) return obj.status();
  UserRecord user;
  user.name = StringField(*obj, "name");
  if (user.name.empty()) return Status::Corruption("user record has no name");
  auto roles = RolesOf(*obj, "user");
  if (!roles.ok()) return roles.status();
  user.roles = std::move(roles).value();
  user.password_hash = StringField(*obj, "password");
  user.disabled =
      obj->has_field("disabled") && obj->at("disabled").is_boolean() && obj->at("disabled").as_bool();
  user.oidc = obj->has_field("oidc") && obj->at("oidc").is_boolean() && obj->at("oidc").as_bool();
  user.created_ms = IntField(*obj, "created_ms");
  return user;
}

std::string EncodeToken(const TokenRecord& token) {
  json::value v = json::value::object();
  v["id"] = json::value::string(token.id);
  v["owner"] = json::value::string(token.owner);
  v["name"] = json::value::string(token.name);
  v["kind"] = json::value::string(token.kind == TokenKind::kSession ? "session" : "api");
  v["roles"] = RolesJson(token.roles);
  v["created_ms"] = json::value::number(token.created_ms);
  v["expires_ms"] = json::value::number(token.expires_ms);
  if (!token.csrf_sha256.empty()) v["csrf_sha256"] = json::value::string(token.csrf_sha256);
  return v.serialize();
}

Result<TokenRecord> DecodeToken(std::string_view text) {
  auto obj = ParseObject(text, "token");
  if (!obj.ok()) return obj.status();
  TokenRecord token;
  token.id = StringField(*obj, "id");
  token.owner = StringField(*obj, "owner");
  if (token.id.empty() || token.owner.empty()) return Status::Corruption("token record has no id or owner");
  token.name = StringField(*obj, "name");
  const std::string kind = StringField(*obj, "kind");
  if (kind != "api" && kind != "session") return Status::Corruption("token record has an unknown kind");
  token.kind = kind == "session" ? TokenKind::kSession : TokenKind::kApi;
  auto roles = RolesOf(*obj, "token");
  if (!roles.ok()) return roles.status();
  token.roles = std::move(roles).value();
  token.created_ms = IntField(*obj, "created_ms");
  token.expires_ms = IntField(*obj, "expires_ms");
  token.csrf_sha256 = StringField(*obj, "csrf_sha256");
  return token;
}

Result<std::vector<Role>> ParseRoles(const std::vector<std::string>& names) {
  std::vector<Role> roles;
  for (const auto& n : names) {
    auto r = ParseRole(n);
    if (!r)
      return Status::InvalidArgument("unknown role \"" + n + "\" (listener, uploader, admin or metrics)");
    roles.push_back(*r);
  }
  std::sort(roles.begin(), roles.end());
  roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  return roles;
}

std::vector<std::string> RoleNames(const std::vector<Role>& roles) {
  std::vector<std::string> out;
  out.reserve(roles.size());
  for (Role r : roles) out.emplace_back(RoleName(r));
  return out;
}

std::vector<Role> IntersectRoles(const std::vector<Role>& requested, const std::vector<Role>& held) {
  auto holds = [&](Role r) {
    return std::any_of(held.begin(), held.end(), [r](Role h) {
      return h == r || h == Role::kAdmin || (h == Role::kUploader && r == Role::kListener);
    });
  };
  std::vector<Role> out;
  for (Role r : requested) {
    if (holds(r)) out.push_back(r);
  }
  return out;
}

Result<NewSecret> MakeSecret(std::string_view prefix) {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Status::IoError("no random bytes for a token (RAND_bytes failed)");
  }
  NewSecret s;
  s.secret = std::string(prefix) +
             Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  s.id = SecretId(s.secret);
  return s;
}

std::string SecretId(std::string_view secret) {
  return Sha256Hex(secret);
}

}  // namespace dispotify::auth
