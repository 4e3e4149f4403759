#pragma once
// Where `dispotifyctl login` keeps the API token it made: one line in a file only its owner may
// read, so later commands authenticate without --token. The path is $DISPOTIFY_TOKEN_FILE, else
// $XDG_CONFIG_HOME/dispotify/token, else $HOME/.config/dispotify/token.
//
// Precedence of credentials (args.h): --token, then $DISPOTIFY_TOKEN, then this file.

#include <optional>
#include <string>

#include "common/status.h"

namespace dispotify::cli {

// "" when none of the variables is set (no home: nothing is stored).
std::string TokenFilePath(const std::string& token_file_env, const std::string& xdg_config_home,
                          const std::string& home);

// The stored token; nullopt when there is no file. kFailedPrecondition when the file is readable
// by others (a token must not be shared by accident: the message says how to fix it).
Result<std::optional<std::string>> LoadToken(const std::string& path);

// Writes the token (mode 0600, its directory 0700 when created) through a temporary file and a
// rename, so a crash leaves the old token or the new one.
Status StoreToken(const std::string& path, const std::string& token);

// Removes the file (OK when there is none).
Status ForgetToken(const std::string& path);

}  // namespace dispotify::cli
