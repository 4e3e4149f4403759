#pragma once
// The pure parts of the browser login through the OIDC issuer: the Authorization Code flow
// (RFC 6749 §4.1) with PKCE (RFC 7636, method S256 only), as OpenID Connect Core §3.1 runs it.
// Building blocks for the node's /auth/oidc/login and /auth/oidc/callback routes, which are not
// wired yet (docs/security.md, "OIDC"): no I/O here, so each piece is tested on its own.
//
// The flow, as those routes will run it:
//  1. login: StartLogin() makes a fresh state and code verifier; the browser keeps both in a
//     short-lived HttpOnly cookie (SameSite=Lax, so that the issuer's redirect back carries it) and
//     is sent to AuthorizationUrl(...), which carries the state and the verifier's S256 challenge.
//  2. callback: the state in the query must equal the cookie's (login CSRF: a callback the victim
//     did not start is refused); the code is exchanged at the token endpoint with
//     TokenRequestBody(...), which carries the verifier (a stolen code is useless without it);
//     ParseTokenResponse gives the access token, validated like any bearer token (jwt.h), whose
//     subject and roles the new session gets.

#include <string>
#include <string_view>

#include "common/status.h"

namespace dispotify::auth {

struct LoginStart {
  std::string state;           // 32 random bytes, base64url (43 characters)
  std::string code_verifier;   // 32 random bytes, base64url: 43 characters, RFC 7636 §4.1's minimum
  std::string code_challenge;  // PkceS256(code_verifier)
};

// kIoError when the OS has no random bytes.
Result<LoginStart> StartLogin();

// BASE64URL-ENCODE(SHA256(ASCII(verifier))), RFC 7636 §4.2.
std::string PkceS256(std::string_view code_verifier);

// application/x-www-form-urlencoded escaping (also right for a query): RFC 3986's unreserved
// characters as they are, every other byte as %XX.
std::string FormEscape(std::string_view text);

struct AuthorizationRequest {
  std::string authorization_endpoint;  // from the discovery document
  std::string client_id;
  std::string redirect_uri;  // this cluster's callback, exactly as registered at the issuer
  std::string scope;         // space-separated; "openid" is added when missing
  std::string audience;      // "": not sent (Hydra needs it to put our audience in the token)
};

// The URL the browser is sent to: the endpoint with response_type=code, client_id,
// redirect_uri, scope, state, code_challenge and code_challenge_method=S256 (and audience)
// appended to whatever query the endpoint already has.
std::string AuthorizationUrl(const AuthorizationRequest& request, const LoginStart& start);

// The token request's form body (RFC 6749 §4.1.3, RFC 7636 §4.5). A non-empty client_secret is
// sent in the body (client_secret_post); without one the client is public and PKCE is its proof.
std::string TokenRequestBody(std::string_view client_id, std::string_view client_secret,
                             std::string_view code, std::string_view redirect_uri,
                             std::string_view code_verifier);

struct TokenResponse {
  std::string access_token;
  std::string id_token;  // "" when the issuer sent none
};

// The token endpoint's JSON answer. kFailedPrecondition with the issuer's "error" (and
// "error_description") for an error answer (RFC 6749 §5.2); kInvalidArgument when it is not
// JSON or has no access_token, or a token_type other than Bearer.
Result<TokenResponse> ParseTokenResponse(std::string_view json);

}  // namespace dispotify::auth
