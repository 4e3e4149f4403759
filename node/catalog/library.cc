#include "node/catalog/library.h"

#include <algorithm>

#include "common/encoding.h"
#include "common/sha256.h"
#include "node/catalog/sqlite_store.h"

namespace dispotify::catalog {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::string Hex(std::string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (char ch : s) {
    const auto b = static_cast<unsigned char>(ch);
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xF]);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// A signed decimal (created_at_ms may be negative in principle; years are not).
bool ParseI64(std::string_view s, int64_t* out) {
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  uint64_t u = 0;
  if (s.empty() || s.size() > 18 || !encoding::ParseU64(s, &u)) return false;
  *out = negative ? -static_cast<int64_t>(u) : static_cast<int64_t>(u);
  return true;
}

Status BadCursor() {
  return Status::InvalidArgument("malformed 'after' cursor (use the next_after of the same listing)");
}

// The cursor's leading tag names its listing, so a cursor is refused by any other listing.
const char* SortTag(AlbumSort sort) {
  switch (sort) {
    case AlbumSort::kName: return "n";
    case AlbumSort::kYear: return "y";
    case AlbumSort::kRecent: return "r";
  }
  return "?";
}

Status ValidateLimit(uint32_t limit) {
  if (limit < 1 || limit > kMaxLibraryLimit) return Status::InvalidArgument("limit must be 1..1000");
  return Status::Ok();
}

}  // namespace

std::string FoldKey(std::string_view text) {
  std::string out;
  for (const std::string& w : search::FoldWords(text)) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

std::string AlbumIdOf(std::string_view album_artist, std::string_view album) {
  Sha256 h;
  h.Update(FoldKey(album_artist));
  h.Update("\x1f");
  h.Update(FoldKey(album));
  const Sha256::Digest d = h.Final();
  return ToHex(d.data(), kAlbumIdChars / 2);
}

bool IsValidAlbumId(std::string_view id) {
  return id.size() == kAlbumIdChars &&
         std::all_of(id.begin(), id.end(), [](char c) { return HexValue(c) >= 0; });
}

void CompleteSong(Song* song) {
  if (song->album_artist.empty()) {
    song->album_artist = song->compilation ? std::string(kVariousArtists) : song->artist;
  }
  song->album_id = AlbumIdOf(song->album_artist, song->album);
}

Status ValidateArtistList(const ArtistListRequest& request) {
  return ValidateLimit(request.limit);
}

Status ValidateAlbumList(const AlbumListRequest& request) {
  DISPOTIFY_RETURN_IF_ERROR(ValidateLimit(request.limit));
  if (request.artist && request.artist->size() > kMaxTextBytes)
    return Status::InvalidArgument("artist is longer than 4096 bytes");
  if (static_cast<uint8_t>(request.sort) > static_cast<uint8_t>(AlbumSort::kRecent))
    return Status::InvalidArgument("unknown album sort");
  return Status::Ok();
}

std::string EncodeArtistCursor(const LibraryCursor& c) {
  return "a." + Hex(c.key) + "." + Hex(c.name);
}

Result<LibraryCursor> DecodeArtistCursor(std::string_view text) {
  const auto parts = Split(text, '.');
  LibraryCursor c;
  if (parts.size() != 3 || parts[0] != "a" || !Unhex(parts[1], &c.key) || !Unhex(parts[2], &c.name))
    return BadCursor();
  return c;
}

std::string EncodeAlbumCursor(AlbumSort sort, const LibraryCursor& c) {
  std::string out = SortTag(sort);
  if (sort != AlbumSort::kName) out += "." + std::to_string(c.number);
  if (sort != AlbumSort::kRecent) out += "." + Hex(c.key);
  return out + "." + c.name;
}

Result<LibraryCursor> DecodeAlbumCursor(AlbumSort sort, std::string_view text) {
  const auto parts = Split(text, '.');
  const size_t want = sort == AlbumSort::kYear ? 4 : 3;
  if (parts.size() != want || parts[0] != SortTag(sort)) return BadCursor();
  LibraryCursor c;
  size_t i = 1;
  if (sort != AlbumSort::kName && !ParseI64(parts[i++], &c.number)) return BadCursor();
  if (sort != AlbumSort::kRecent && !Unhex(parts[i++], &c.key)) return BadCursor();
  c.name = std::string(parts[i]);
  if (!IsValidAlbumId(c.name)) return BadCursor();
  return c;
}

}  // namespace dispotify::catalog
