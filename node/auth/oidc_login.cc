#include "node/auth/oidc_login.h"

#include <cpprest/json.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <cstdio>

#include "common/base64.h"
#include "common/sha256.h"

namespace dispotify::auth {

namespace {

namespace json = web::json;

Result<std::string> RandomBase64Url() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Status::IoError("no random bytes for an OIDC login (RAND_bytes failed)");
  }
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string StringOr(const json::value& obj, const char* name) {
  if (!obj.has_field(name) || !obj.at(name).is_string()) return "";
  return obj.at(name).as_string();
}

bool HasScope(std::string_view scope, std::string_view wanted) {
  size_t pos = 0;
  while (pos < scope.size()) {
    size_t end = scope.find(' ', pos);
    if (end == std::string_view::npos) end = scope.size();
    if (scope.substr(pos, end - pos) == wanted) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

Result<LoginStart> StartLogin() {
  auto state = RandomBase64Url();
  if (!state.ok()) return state.status();
  auto verifier = RandomBase64Url();
  if (!verifier.ok()) return verifier.status();
  LoginStart start;
  start.state = std::move(state).value();
  start.code_verifier = std::move(verifier).value();
  start.code_challenge = PkceS256(start.code_verifier);
  return start;
}

std::string PkceS256(std::string_view code_verifier) {
  const auto digest = Sha256Digest(code_verifier);
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string FormEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      std::array<char, 4> hex{};
      std::snprintf(hex.data(), hex.size(), "%%%02X", c);
      out += hex.data();
    }
  }
  return out;
}

std::string AuthorizationUrl(const AuthorizationRequest& request, const LoginStart& start) {
  std::string scope = request.scope;
  if (!HasScope(scope, "openid")) scope = scope.empty() ? "openid" : "openid " + scope;
  std::string url = request.authorization_endpoint;
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += "response_type=code&client_id=" + FormEscape(request.client_id) +
         "&redirect_uri=" + FormEscape(request.redirect_uri) + "&scope=" + FormEscape(scope) +
         "&state=" + FormEscape(start.state) + "&code_challenge=" + FormEscape(start.code_challenge) +
         "&code_challenge_method=S256";
  if (!request.audience.empty()) url += "&audience=" + FormEscape(request.audience);
  return url;
}

std::string TokenRequestBody(std::string_view client_id, std::string_view client_secret,
                             std::string_view code, std::string_view redirect_uri,
                             std::string_view code_verifier) {
  std::string body = "grant_type=authorization_code&code=" + FormEscape(code) +
                     "&redirect_uri=" + FormEscape(redirect_uri) + "&client_id=" + FormEscape(client_id) +
                     "&code_verifier=" + FormEscape(code_verifier);
  if (!client_secret.empty()) body += "&client_secret=" + FormEscape(client_secret);
  return body;
}

Result<TokenResponse> ParseTokenResponse(std::string_view text) {
  json::value v;
  try {
    v = json::value::parse(std::string(text));
  } catch (const json::json_exception& e) {
    return Status::InvalidArgument(std::string("the token endpoint's answer is not JSON: ") + e.what());
  }
  if (!v.is_object()) return Status::InvalidArgument("the token endpoint's answer is not a JSON object");
  if (const std::string error = StringOr(v, "error"); !error.empty()) {
    const std::string description = StringOr(v, "error_description");
    return Status::FailedPrecondition("the issuer refused the code: " + error +
                                      (description.empty() ? "" : " (" + description + ")"));
  }
  TokenResponse r;
  r.access_token = StringOr(v, "access_token");
  r.id_token = StringOr(v, "id_token");
  if (r.access_token.empty())
    return Status::InvalidArgument("the token endpoint's answer has no access_token");
  // RFC 6749 §5.1: the type is case-insensitive; anything but a bearer token is not ours to use.
  std::string type = StringOr(v, "token_type");
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type != "bearer") return Status::InvalidArgument("the token endpoint's token_type is not Bearer");
  return r;
}

}  // namespace dispotify::auth
