#pragma once
// File ids: the key of a song in the catalog, the name of its blob on every replica, the input of
// placement. One rule, shared by the node (REST and gRPC APIs, catalog, blob store) and by the
// clients (dispotifyctl; the web UI implements the same rule from docs/file-ids.md, which is the
// user-facing description of what follows).
//
// A valid file id is 1..kMaxFileIdSize characters of [A-Za-z0-9._-], neither "." nor "..": it
// becomes a file name in the blob store, so it holds no separator and no NUL, is never a name the
// file system gives a meaning to, and is short enough for any file system's name limit.
//
// An upload that names no id gets one from the relative path the client sent (the CLI's path
// below the folder it was asked to upload, a browser's webkitRelativePath, or a bare file name).
// Placement hashes the id before the body arrives, so the id depends on the path only, never on
// the content. FileIdFromPath(path):
//  1. Split on '/' and '\' (Windows separators count too). Drop empty, "." and ".." components
//     (a path can name nothing above its root).
//  2. Slug each component: every byte outside [A-Za-z0-9._-] becomes '-' (so a multi-byte UTF-8
//     character becomes one '-'), runs of '-' collapse into one, then leading '-' and '.' are
//     dropped (no hidden names, never "." or "..") and trailing '-' too. A component left empty is
//     dropped.
//  3. Join the slugs with '_':  "Music/Abbey Road/01 - Come Together.mp3"
//                            -> "Music_Abbey-Road_01-Come-Together.mp3".
//  4. Longer than kMaxFileIdSize: keep a prefix (with any trailing '-', '_' or '.' removed), then
//     '-', then the first 16 hex digits (lowercase) of the SHA-256 of the normalised path (the
//     components kept by step 1, joined by '/', before slugging), then the extension: the last
//     slug's suffix from its last '.', when that suffix is 2..10 characters long and the '.' is not
//     its first character. The prefix is as long as fits in kMaxFileIdSize. Paths that differ
//     only beyond the prefix get different ids, and the type stays visible.
//  5. Nothing left: "" (the caller answers 400: no id can be derived).
// A one-component path (a bare file name) is the special case that earlier versions used.
// The result is always "" or a valid file id. Two paths may slug to the same id ("a b.mp3" and
// "a-b.mp3"): the second upload is then refused with 409 unless the client asks to replace.

#include <cstddef>
#include <string>
#include <string_view>

namespace dispotify {

inline constexpr size_t kMaxFileIdSize = 128;

// True when `id` is a valid file id (see above). Checked before any id touches a disk or a query.
bool IsValidFileId(std::string_view id);

// The file id derived from a client's relative path (see above); "" when none can be.
std::string FileIdFromPath(std::string_view relative_path);

// An album picture as music players name it: cover, folder or front, with a jpg, jpeg, png or
// webp extension, any case ("Cover.JPG", "a/b/folder.png"; not "back.jpg" or "scan.jpg"). A
// picture uploaded beside an album's songs under such a name becomes the album's cover
// (docs/openapi.yaml, POST /music/upload); clients send such pictures after the songs.
bool IsAlbumPictureName(std::string_view file_name);

}  // namespace dispotify
