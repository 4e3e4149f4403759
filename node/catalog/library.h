#pragma once
// The library model the UI browses: album artists, albums and their songs, derived from the songs'
// tags. Both metadata stores keep it identically (same folding, same album ids, same order, same
// cursors), so a node answers the same page whichever store it runs on.
//
// Album identity. An album is the set of songs with equal AlbumIdOf(album_artist, album):
//   album_id = lowercase hex of the first 8 bytes of SHA-256(FoldKey(album_artist) "\x1f"
//              FoldKey(album))
// FoldKey is the search folding (sqlite_store.h, "Folding"): tags that differ only in case,
// accents or punctuation ("Abbey Road" / "ABBEY ROAD" / "Abbey Road!") join one album. A song's
// album_artist, when its tag is empty, is "Various Artists" for a compilation and its artist
// otherwise (CompleteSong), so the tracks of a compilation with many artists stay one album,
// and songs without an album form one album per artist (title "").
//
// An album's summary: title = the smallest `album` of its songs (byte order; they fold alike),
// album_artist = the smallest album_artist, year = the largest year, song_count, duration_ms
// (sum), created_at_ms (newest song), cover (the album's picture, an IsPicture entry, else that
// of the first song in album order with one). Pictures are not songs: no other column counts
// them. Artists are the album artists of albums (exact names): album_count = albums whose
// album_artist is that name, song_count = their songs.
//
// Orders (keyset paging; cursors are opaque strings, only valid for the same listing):
//   artists          FoldKey(name), name
//   albums name      FoldKey(title), album_id
//   albums year      year descending, FoldKey(title), album_id
//   albums recent    created_at_ms descending, album_id descending
// An album's songs: disc, track, title, file_id.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "node/catalog/types.h"

namespace dispotify::catalog {

inline constexpr std::string_view kVariousArtists = "Various Artists";
inline constexpr size_t kAlbumIdChars = 16;
inline constexpr uint32_t kMaxLibraryLimit = 1000;

// The folded words of `text` joined by single spaces ("Beyoncé & Jay-Z" -> "beyonce jay z").
std::string FoldKey(std::string_view text);
std::string AlbumIdOf(std::string_view album_artist, std::string_view album);
bool IsValidAlbumId(std::string_view id);  // 16 lowercase hex digits
// Fills the derived fields of a song about to be stored: album_artist when empty, album_id.
void CompleteSong(Song* song);

struct ArtistSummary {
  std::string name;
  uint64_t album_count = 0;
  uint64_t song_count = 0;
  bool operator==(const ArtistSummary&) const = default;
};

struct ArtistListRequest {
  uint32_t limit = 50;  // 1..1000
  std::string after;    // a previous page's next_after
};

struct ArtistPage {
  std::vector<ArtistSummary> items;
  std::string next_after;  // empty on the last page
};

enum class AlbumSort : uint8_t { kName = 0, kYear = 1, kRecent = 2 };

struct AlbumListRequest {
  uint32_t limit = 50;  // 1..1000
  std::string after;
  AlbumSort sort = AlbumSort::kName;
  std::optional<std::string> artist;  // only the albums of this album artist (exact name)
};

struct AlbumSummary {
  std::string album_id;
  std::string title;
  std::string album_artist;
  uint32_t year = 0;
  uint64_t song_count = 0;
  uint64_t duration_ms = 0;
  int64_t created_at_ms = 0;
  std::string cover;  // its picture's, else its first song's (disc, track order) with one; "" if none
  bool operator==(const AlbumSummary&) const = default;
};

struct AlbumPage {
  std::vector<AlbumSummary> items;
  std::string next_after;  // empty on the last page
};

struct AlbumDetail {
  AlbumSummary summary;
  std::vector<std::string> genres;  // distinct non-empty genres of its songs, sorted
  std::vector<Song> songs;          // disc, track, title, file_id
};

// --- shared by the stores -------------------------------------------------------------------------

// kInvalidArgument for a limit out of 1..1000 or an artist name over kMaxTextBytes.
Status ValidateArtistList(const ArtistListRequest& request);
Status ValidateAlbumList(const AlbumListRequest& request);

// The keyset position after a row, as a cursor. Numbers travel in decimal, strings in hex, so
// the cursor is plain ASCII and no field can hold the separator.
struct LibraryCursor {
  std::string key;     // artists: FoldKey(name); albums by name and year: FoldKey(title)
  std::string name;    // artists: name; albums: album_id
  int64_t number = 0;  // albums by year: year; by recent: created_at_ms
};
std::string EncodeArtistCursor(const LibraryCursor& c);
std::string EncodeAlbumCursor(AlbumSort sort, const LibraryCursor& c);
// kInvalidArgument when `text` is not a cursor of this listing.
Result<LibraryCursor> DecodeArtistCursor(std::string_view text);
Result<LibraryCursor> DecodeAlbumCursor(AlbumSort sort, std::string_view text);

}  // namespace dispotify::catalog
