// Package linearizability checks that a history of REST calls against the Dispotify catalog is
// linearizable, with porcupine (github.com/anishathalye/porcupine). The command
// dispotify-lincheck (cmd/dispotify-lincheck) runs it on a history file.
//
// # History format
//
// JSON Lines: one operation per line, blank lines ignored, unknown fields rejected:
//
//	{"client":3,"op":"put","id":"song-1","sha256":"<64 hex>","status":201,"error":"","call_ns":123,"return_ns":456}
//
// Fields:
//
//   - client: who issued the call, an integer >= 0. One client has at most one call in flight;
//     a client that gives up on a call (status 0) should continue under a new number, because
//     that call may still take effect later.
//   - op: "put" (upload of content sha256 under id), "delete" or "get".
//   - id: the song's file_id.
//   - sha256: put: the uploaded content; get answered 200: the content the answer reported;
//     otherwise empty (ignored).
//   - status: the HTTP status the client got; 0 means no answer (timeout, broken connection).
//   - error: the "error" code of the JSON error body ("already_exists", "conflict", ...);
//     required for a 409, otherwise optional.
//   - call_ns, return_ns: when the call was sent and when its answer (or the client's giving up)
//     came, in nanoseconds of one monotonic clock shared by every client; call_ns <= return_ns.
//
// # Model
//
// Each id is checked alone (porcupine's Partition). The state of an id is absent or
// present(sha256); it starts absent.
//
//	put    201                      absent -> present(sha)
//	put    200                      present(sha), unchanged
//	put    409 already_exists       present(other sha), unchanged
//	delete 204                      present(any) -> absent
//	delete 404                      absent
//	get    200                      present(sha)
//	get    404                      absent
//
// Calls that had no effect are dropped before checking: any other 4xx (a 409 "conflict" is
// another upload of the id in progress) and every get without an answer. A put or delete with
// status 0 or 5xx has an unknown outcome: it may have taken effect at any time after its call,
// or never. It is kept with a return time of +infinity and an output that accepts both outcomes
// (porcupine may then place it anywhere after its call, including after everything else, which
// is the same as never). Any other status is an error in the history.
package linearizability
