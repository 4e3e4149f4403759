#pragma once
// What the reloading TLS sources (credentials.h, server_context.h) share: a file's stamp, which
// tells a rotation from an untouched file without reading it, and a bounded read of a PEM file.

#include <cstdint>
#include <string>

#include "common/status.h"

namespace dispotify::tls {

// (mtime, size, inode, device) of a file, following symlinks: see credentials.h for why these four
// catch every way a certificate gets replaced, and the one blind spot.
struct FileStamp {
  int64_t mtime_ns = 0;
  int64_t size = 0;
  uint64_t inode = 0;
  uint64_t device = 0;
  bool operator==(const FileStamp&) const = default;
};

Result<FileStamp> StampOf(const std::string& path);

// The whole file; refused above 1 MiB (PEM files of a few certificates are a few KiB).
Result<std::string> ReadSmallFile(const std::string& path);

}  // namespace dispotify::tls
