#pragma once
// Which local files `dispotifyctl upload` sends: the operands, with folders walked recursively and
// only audio files kept from them; and the path each is sent under, from which the server derives
// its file id (docs/file-ids.md).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/sha256.h"
#include "common/status.h"

namespace dispotify::cli {

// mp3 flac ogg opus m4a wav aac, any case: "Song.FLAC" yes, "notes.txt", "mp3", ".mp3" no.
bool IsAudioFileName(std::string_view file_name);

struct UploadFile {
  std::string path;  // as given or found, for messages and for opening
  std::string name;  // the base name, for messages
  // Sent as ?path=: the path relative to the parent of the operand it was found under, with '/'
  // separators, like a browser's webkitRelativePath: `upload ~/Music` sends "Music/Album/01.mp3",
  // `upload song.mp3` sends "song.mp3". So the same library uploaded again from anywhere gets the
  // same ids, and equal names in different albums get different ones.
  std::string relative_path;
  uint64_t size = 0;
};

struct UploadProblem {
  std::string path;
  std::string reason;
};

struct UploadPlan {
  // In order: operands as given, each folder sorted by path; a folder's album pictures after all
  // its songs (the node finds a picture's album from the songs beside it, so they must be there).
  std::vector<UploadFile> files;
  std::vector<UploadProblem> problems;  // operands that cannot be uploaded (missing, not audio, ...)
  size_t skipped = 0;                   // files inside folders that are not audio
};

// A file operand is taken when its name is an audio file name, and reported as a problem
// otherwise (the server would refuse it with 415). Inside folders, album pictures are taken too. Folders are
// walked recursively without following symlinked folders (no loops); symlinks to files are followed. A path
// reached twice is sent once. Unreadable subfolders are reported as problems, and the walk goes on.
UploadPlan PlanUploads(const std::vector<std::string>& operands);

// SHA-256 of the file's content (sent as Repr-Digest, so that the node refuses damaged bytes).
Result<Sha256::Digest> HashFile(const std::string& path);

}  // namespace dispotify::cli
