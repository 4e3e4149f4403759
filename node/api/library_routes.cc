#include "node/api/library_routes.h"

#include <string>

#include "node/api/http/request.h"
#include "node/api/http/response.h"
#include "node/catalog/library.h"
#include "node/catalog/metadata_store.h"
#include "node/replication/file_service.h"

namespace dispotify::api {
namespace {

using http::BodyReader;
using http::Request;
using http::Response;
using rest::Quote;

std::string AlbumSummaryFields(const catalog::AlbumSummary& a) {
  return "\"album_id\":" + Quote(a.album_id) + ",\"title\":" + Quote(a.title) +
         ",\"album_artist\":" + Quote(a.album_artist) + ",\"year\":" + std::to_string(a.year) +
         ",\"song_count\":" + std::to_string(a.song_count) +
         ",\"duration_ms\":" + std::to_string(a.duration_ms) +
         ",\"created_at_ms\":" + std::to_string(a.created_at_ms) + ",\"cover\":" + Quote(a.cover);
}

class LibraryRoutes {
 public:
  explicit LibraryRoutes(const RestApiDeps& deps) : deps_(deps) {}

  Response ListArtists(Request& req, BodyReader&) {
    catalog::ArtistListRequest lr;
    auto limit = rest::UintParam(req, "limit", 50, 1, catalog::kMaxLibraryLimit);
    if (!limit.ok()) return rest::Error(limit.status());
    lr.limit = static_cast<uint32_t>(*limit);
    if (auto a = req.Query("after")) lr.after = std::string(*a);
    // The cursor is checked before the read waits for the leader: a bad request is a 400 even
    // when the cluster has no quorum.
    if (!lr.after.empty()) {
      if (auto c = catalog::DecodeArtistCursor(lr.after); !c.ok()) return rest::Error(c.status());
    }
    return Read(req, [&]() -> Result<std::string> {
      auto page = deps_.store->ListArtists(lr);
      if (!page.ok()) return page.status();
      std::string out = "{\"items\":[";
      for (size_t i = 0; i < page->items.size(); ++i) {
        const auto& a = page->items[i];
        if (i > 0) out += ",";
        out += "{\"name\":" + Quote(a.name) + ",\"album_count\":" + std::to_string(a.album_count) +
               ",\"song_count\":" + std::to_string(a.song_count) + "}";
      }
      return out + "],\"next_after\":" + Quote(page->next_after) + "}";
    });
  }

  Response ListAlbums(Request& req, BodyReader&) {
    catalog::AlbumListRequest lr;
    auto limit = rest::UintParam(req, "limit", 50, 1, catalog::kMaxLibraryLimit);
    if (!limit.ok()) return rest::Error(limit.status());
    lr.limit = static_cast<uint32_t>(*limit);
    if (auto sort = req.Query("sort")) {
      if (*sort == "name") {
        lr.sort = catalog::AlbumSort::kName;
      } else if (*sort == "year") {
        lr.sort = catalog::AlbumSort::kYear;
      } else if (*sort == "recent") {
        lr.sort = catalog::AlbumSort::kRecent;
      } else {
        return rest::Error(Status::InvalidArgument("sort must be 'name', 'year' or 'recent'"));
      }
    }
    if (auto a = req.Query("after")) lr.after = std::string(*a);
    if (auto artist = req.Query("artist")) lr.artist = std::string(*artist);
    if (Status s = catalog::ValidateAlbumList(lr); !s.ok()) return rest::Error(s);
    if (!lr.after.empty()) {
      if (auto c = catalog::DecodeAlbumCursor(lr.sort, lr.after); !c.ok()) return rest::Error(c.status());
    }
    return Read(req, [&]() -> Result<std::string> {
      auto page = deps_.store->ListAlbums(lr);
      if (!page.ok()) return page.status();
      std::string out = "{\"items\":[";
      for (size_t i = 0; i < page->items.size(); ++i) {
        if (i > 0) out += ",";
        out += "{" + AlbumSummaryFields(page->items[i]) + "}";
      }
      return out + "],\"next_after\":" + Quote(page->next_after) + "}";
    });
  }

  Response GetAlbum(Request& req, BodyReader&) {
    const std::string id(req.PathParam("album_id"));
    if (!catalog::IsValidAlbumId(id)) {
      return rest::Error(Status::InvalidArgument("an album id is 16 lowercase hex digits"));
    }
    return Read(req, [&]() -> Result<std::string> {
      auto album = deps_.store->GetAlbum(id);
      if (!album.ok()) return album.status();
      if (!album->has_value()) return Status::NotFound("no album " + id);
      const catalog::AlbumDetail& d = **album;
      std::string out = "{" + AlbumSummaryFields(d.summary) + ",\"genres\":[";
      for (size_t i = 0; i < d.genres.size(); ++i) out += (i > 0 ? "," : "") + Quote(d.genres[i]);
      out += "],\"songs\":[";
      for (size_t i = 0; i < d.songs.size(); ++i)
        out += (i > 0 ? "," : "") + rest::SongJson(d.songs[i], nullptr);
      return out + "]}";
    });
  }

 private:
  // A catalog read: the consistency the client asked for, confirmed before the store is read.
  template <typename Fn>
  Response Read(Request& req, Fn&& body) {
    auto consistency = rest::ConsistencyOf(req);
    if (!consistency.ok()) return rest::Error(consistency.status());
    if (Status s = deps_.files->SyncForRead(*consistency); !s.ok()) {
      return rest::WithConsistency(rest::Error(s), *consistency);
    }
    Result<std::string> json = body();
    if (!json.ok()) return rest::WithConsistency(rest::Error(json.status()), *consistency);
    return rest::WithConsistency(Response::Json(200, std::move(json).value()), *consistency);
  }

  const RestApiDeps deps_;
};

}  // namespace

void AddLibraryRoutes(const RestApiDeps& deps, http::Router* router) {
  auto routes = std::make_shared<LibraryRoutes>(deps);
  auto bind = [routes](Response (LibraryRoutes::*fn)(Request&, BodyReader&)) {
    return [routes, fn](Request& req, BodyReader& body) { return ((*routes).*fn)(req, body); };
  };
  router->Get("/music/artists", bind(&LibraryRoutes::ListArtists));
  router->Get("/music/albums", bind(&LibraryRoutes::ListAlbums));
  router->Get("/music/albums/{album_id}", bind(&LibraryRoutes::GetAlbum));
}

}  // namespace dispotify::api
