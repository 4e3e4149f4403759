#pragma once
// Which local files `dispotifyctl upload` sends: the operands, with folders walked recursively and
// only audio files kept from them.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dispotify::cli {

// mp3 flac ogg opus m4a wav aac, any case: "Song.FLAC" yes, "notes.txt", "mp3", ".mp3" no.
bool IsAudioFileName(std::string_view file_name);

struct UploadFile {
  std::string path;  // as given or found, for messages and for opening
  std::string name;  // the base name, sent as ?filename= (the server derives the file id from it)
  uint64_t size = 0;
};

struct UploadProblem {
  std::string path;
  std::string reason;
};

struct UploadPlan {
  std::vector<UploadFile> files;        // in order: operands as given, each folder sorted by path
  std::vector<UploadProblem> problems;  // operands that cannot be uploaded (missing, not audio, ...)
  size_t skipped = 0;                   // files inside folders that are not audio
};

// A file operand is taken when its name is an audio file name, and reported as a problem
// otherwise (the server would refuse it with 415). Folders are walked recursively without following
// symlinked folders (no loops); symlinks to files are followed. A path reached twice is sent once.
// Unreadable subfolders are reported as problems, and the walk goes on.
UploadPlan PlanUploads(const std::vector<std::string>& operands);

}  // namespace dispotify::cli
