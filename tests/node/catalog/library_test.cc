// The library model's vocabulary (node/catalog/library.h): folding keys, album ids, the defaults a
// stored song gets, and the cursors of each listing.

#include "node/catalog/library.h"

#include <gtest/gtest.h>

#include <string>

namespace dispotify::catalog {
namespace {

TEST(LibraryTest, FoldKeyIsTheSearchFoldingJoinedBySpaces) {
  EXPECT_EQ(FoldKey("Beyoncé & Jay-Z"), "beyonce jay z");
  EXPECT_EQ(FoldKey("  ABBEY   Road! "), "abbey road");
  EXPECT_EQ(FoldKey("Motörhead"), "motorhead");
  EXPECT_EQ(FoldKey("Don't"), "dont");
  EXPECT_EQ(FoldKey("東京事変"), "東京事変");
  EXPECT_EQ(FoldKey(""), "");
  EXPECT_EQ(FoldKey("!!!"), "");
}

// Table-driven: each row's tags must land in the album of `same_as` (or in another album).
TEST(LibraryTest, AlbumIdsJoinTagsThatDifferOnlyInCaseAccentsAndPunctuation) {
  struct Row {
    const char* artist;
    const char* album;
    bool same;
  };
  const std::string base = AlbumIdOf("The Beatles", "Abbey Road");
  const Row rows[] = {
      {"the beatles", "abbey road", true},   {"THE BEATLES", "ABBEY ROAD", true},
      {"The Beatles ", "Abbey  Road", true}, {"The Béatles", "Abbey Röad", true},
      {"The Beatles", "Abbey Road!", true},  {"Beatles", "Abbey Road", false},
      {"The Beatles", "Let It Be", false},   {"The Beatles Abbey", "Road", false},
  };
  for (const Row& r : rows) {
    EXPECT_EQ(AlbumIdOf(r.artist, r.album) == base, r.same) << r.artist << " / " << r.album;
  }
  // SHA-256("the beatles\x1f" "abbey road"), first 8 bytes: pinned, as ids are stored and linked.
  EXPECT_EQ(base, "8c0f512e5bf1fbf3");
  EXPECT_EQ(AlbumIdOf("", ""), "ffe679bb831c95b6");
  EXPECT_TRUE(IsValidAlbumId(base));
}

TEST(LibraryTest, AlbumIdValidation) {
  EXPECT_TRUE(IsValidAlbumId("0123456789abcdef"));
  EXPECT_FALSE(IsValidAlbumId("0123456789ABCDEF"));
  EXPECT_FALSE(IsValidAlbumId("0123456789abcde"));
  EXPECT_FALSE(IsValidAlbumId("0123456789abcdef0"));
  EXPECT_FALSE(IsValidAlbumId("0123456789abcdeg"));
  EXPECT_FALSE(IsValidAlbumId(""));
}

TEST(LibraryTest, CompleteSongFillsTheAlbumArtistAndTheAlbumId) {
  struct Row {
    const char* artist;
    const char* album_artist;
    bool compilation;
    const char* want;
  };
  const Row rows[] = {
      {"Queen", "", false, "Queen"},
      {"Queen", "", true, "Various Artists"},
      {"Queen", "Queen & David Bowie", false, "Queen & David Bowie"},
      {"Queen", "DJ Mix", true, "DJ Mix"},  // a tagged album artist wins over the flag
      {"", "", false, ""},
  };
  for (const Row& r : rows) {
    Song s;
    s.artist = r.artist;
    s.album_artist = r.album_artist;
    s.compilation = r.compilation;
    s.album = "Greatest Hits";
    CompleteSong(&s);
    EXPECT_EQ(s.album_artist, r.want) << r.artist << " / " << r.album_artist;
    EXPECT_EQ(s.album_id, AlbumIdOf(r.want, "Greatest Hits"));
  }
  // A compilation's tracks by different artists stay one album.
  Song a, b;
  a.artist = "Madonna";
  b.artist = "Prince";
  a.album = b.album = "Now 1";
  a.compilation = b.compilation = true;
  CompleteSong(&a);
  CompleteSong(&b);
  EXPECT_EQ(a.album_id, b.album_id);
  EXPECT_EQ(a.album_id, "efb8041511843eca");
}

TEST(LibraryTest, CursorsRoundTripAndBelongToOneListing) {
  const LibraryCursor artist{"the beatles", "The Beatles", 0};
  auto a = DecodeArtistCursor(EncodeArtistCursor(artist));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->key, artist.key);
  EXPECT_EQ(a->name, artist.name);

  const LibraryCursor album{"abbey road.x", "8c0f512e5bf1fbf3", -17};
  for (AlbumSort sort : {AlbumSort::kName, AlbumSort::kYear, AlbumSort::kRecent}) {
    const std::string text = EncodeAlbumCursor(sort, album);
    auto c = DecodeAlbumCursor(sort, text);
    ASSERT_TRUE(c.ok()) << text;
    EXPECT_EQ(c->name, album.name);
    if (sort != AlbumSort::kRecent) {
      EXPECT_EQ(c->key, album.key);
    }
    if (sort != AlbumSort::kName) {
      EXPECT_EQ(c->number, album.number);
    }
    for (AlbumSort other : {AlbumSort::kName, AlbumSort::kYear, AlbumSort::kRecent}) {
      if (other != sort) {
        EXPECT_FALSE(DecodeAlbumCursor(other, text).ok()) << text;
      }
    }
    EXPECT_FALSE(DecodeArtistCursor(text).ok()) << text;
  }
  for (const char* bad :
       {"", "a", "a.zz.00", "a.0.00", "n.00.XYZ", "n.00.0123456789abcdef.1", "y.x.00.0123456789abcdef",
        "r.5.not-an-album-id", "r.99999999999999999999.0123456789abcdef"}) {
    EXPECT_FALSE(DecodeAlbumCursor(AlbumSort::kName, bad).ok()) << bad;
    EXPECT_FALSE(DecodeAlbumCursor(AlbumSort::kYear, bad).ok()) << bad;
    EXPECT_FALSE(DecodeAlbumCursor(AlbumSort::kRecent, bad).ok()) << bad;
  }
  EXPECT_FALSE(DecodeArtistCursor("a.zz.00").ok());
  EXPECT_FALSE(DecodeArtistCursor("a.0.00").ok());
  EXPECT_EQ(DecodeAlbumCursor(AlbumSort::kName, "n.00.XYZ").status().code(), StatusCode::kInvalidArgument);
}

TEST(LibraryTest, ListRequestsAreValidated) {
  ArtistListRequest artists;
  artists.limit = 0;
  EXPECT_EQ(ValidateArtistList(artists).code(), StatusCode::kInvalidArgument);
  artists.limit = 1001;
  EXPECT_EQ(ValidateArtistList(artists).code(), StatusCode::kInvalidArgument);
  artists.limit = 1000;
  EXPECT_TRUE(ValidateArtistList(artists).ok());
  AlbumListRequest albums;
  EXPECT_TRUE(ValidateAlbumList(albums).ok());
  albums.artist = std::string(kMaxTextBytes + 1, 'x');
  EXPECT_EQ(ValidateAlbumList(albums).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dispotify::catalog
