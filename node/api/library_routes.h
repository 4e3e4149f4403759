#pragma once
// The library routes of the REST API (docs/openapi.yaml): what the web UI browses.
//
//   GET /music/artists?limit=1..1000&after=            album artists with album and song counts
//   GET /music/albums?limit=&after=&sort=name|year|recent&artist=<album artist, exact>
//   GET /music/albums/{album_id}                       the summary, genres and songs in disc /
//                                                      track / title order; 404 unknown, 400
//                                                      malformed id
// Orders, album identity and cursors are the catalog's (node/catalog/library.h). Reads are
// linearizable unless the client opts in to ?consistency=stale, exactly as /music/songs (503
// when the latest state cannot be confirmed); errors are the API's JSON errors.

#include "node/api/http/router.h"
#include "node/api/rest_api.h"

namespace dispotify::api {

void AddLibraryRoutes(const RestApiDeps& deps, http::Router* router);

}  // namespace dispotify::api
