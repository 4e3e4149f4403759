package linearizability

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

var (
	shaA = strings.Repeat("a", 64)
	shaB = strings.Repeat("b", 64)
)

// line is one history line; times in nanoseconds.
func line(client int, op, id, sha string, status int, errCode string, call, ret int64) string {
	return fmt.Sprintf(`{"client":%d,"op":%q,"id":%q,"sha256":%q,"status":%d,"error":%q,"call_ns":%d,"return_ns":%d}`,
		client, op, id, sha, status, errCode, call, ret)
}

func put(client int, id, sha string, status int, call, ret int64) string {
	return line(client, "put", id, sha, status, "", call, ret)
}

func put409(client int, id, sha, errCode string, call, ret int64) string {
	return line(client, "put", id, sha, 409, errCode, call, ret)
}

func del(client int, id string, status int, call, ret int64) string {
	return line(client, "delete", id, "", status, "", call, ret)
}

func get(client int, id, sha string, status int, call, ret int64) string {
	return line(client, "get", id, sha, status, "", call, ret)
}

func check(t *testing.T, lines []string) Result {
	t.Helper()
	h, err := Parse(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Check(h, 0)
}

func TestRejectsAnomalies(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		failed []string // ids reported as not linearizable
	}{
		{"read of a deleted song after the delete was acknowledged", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			del(1, "song-1", 204, 20, 30),
			get(2, "song-1", shaA, 200, 40, 50),
		}, []string{"song-1"}},
		{"404 after an acknowledged put", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			get(1, "song-1", "", 404, 20, 30),
		}, []string{"song-1"}},
		{"lost write: acknowledged, read once, then gone with no delete", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			get(1, "song-1", shaA, 200, 20, 30),
			get(2, "song-1", "", 404, 1000, 1010),
		}, []string{"song-1"}},
		{"get returns content that nobody put", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			get(1, "song-1", shaB, 200, 20, 30),
		}, []string{"song-1"}},
		{"two creations of one id without a delete between", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			put(1, "song-1", shaB, 201, 20, 30),
		}, []string{"song-1"}},
		{"already_exists while the id was absent", []string{
			put409(0, "song-1", shaA, "already_exists", 0, 10),
		}, []string{"song-1"}},
		{"an unknown put seen before it was called", []string{
			get(0, "song-1", shaA, 200, 0, 10),
			put(1, "song-1", shaA, 0, 20, 30),
		}, []string{"song-1"}},
		{"delete 404 after an acknowledged put", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			del(1, "song-1", 404, 20, 30),
		}, []string{"song-1"}},
		{"only the id that fails is named", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			put(1, "song-2", shaB, 201, 5, 15),
			get(2, "song-1", shaA, 200, 20, 30),
			get(3, "song-2", "", 404, 25, 35),
			get(4, "song-3", "", 404, 25, 35),
		}, []string{"song-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := check(t, tc.lines)
			if r.Outcome != porcupine.Illegal {
				t.Fatalf("outcome %v, want Illegal", r.Outcome)
			}
			if !reflect.DeepEqual(r.FailedIDs, tc.failed) {
				t.Errorf("failed ids %v, want %v", r.FailedIDs, tc.failed)
			}
		})
	}
}

func TestAcceptsValidHistories(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
	}{
		{"empty", nil},
		{"gets concurrent with a put see either state", []string{
			put(0, "song-1", shaA, 201, 0, 100),
			get(1, "song-1", "", 404, 10, 20),
			get(2, "song-1", shaA, 200, 30, 40),
			get(3, "song-1", shaA, 200, 110, 120),
		}},
		{"a concurrent get may be ordered before a put that started first", []string{
			put(0, "song-1", shaA, 201, 0, 100),
			get(1, "song-1", shaA, 200, 10, 20),
			get(2, "song-1", "", 404, 15, 25), // concurrent with get 1: ordered before it
		}},
		{"an unknown put whose effect is seen much later", []string{
			put(0, "song-1", shaA, 0, 0, 10),
			get(1, "song-1", "", 404, 20, 30),
			get(1, "song-1", "", 404, 1e6, 1e6+10),
			get(1, "song-1", shaA, 200, 1e9, 1e9+10),
		}},
		{"an unknown delete never seen", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			del(1, "song-1", 503, 20, 30),
			get(2, "song-1", shaA, 200, 40, 50),
			get(2, "song-1", shaA, 200, 1000, 1010),
		}},
		{"an unknown put that lost to another upload", []string{
			put(0, "song-1", shaA, 504, 0, 10),
			put(1, "song-1", shaB, 201, 5, 15),
			get(2, "song-1", shaB, 200, 20, 30),
		}},
		{"calls without effect are dropped", []string{
			put409(0, "song-1", shaA, "conflict", 0, 10), // another upload held the lease
			put(1, "song-1", shaA, 400, 0, 10),
			del(2, "song-1", 409, 0, 10),
			get(3, "song-1", shaA, 503, 0, 10), // a get without answer tells nothing
			get(4, "song-1", "", 404, 20, 30),
		}},
		{"re-upload, upload of other content, delete, recreate", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			put(1, "song-1", shaA, 200, 20, 30),
			put409(2, "song-1", shaB, "already_exists", 40, 50),
			del(3, "song-1", 204, 60, 70),
			del(4, "song-1", 404, 80, 90),
			put(5, "song-1", shaB, 201, 100, 110),
			get(6, "song-1", shaB, 200, 120, 130),
		}},
		{"two ids interleaved", []string{
			put(0, "song-1", shaA, 201, 0, 50),
			put(1, "song-2", shaB, 201, 10, 20),
			get(2, "song-1", "", 404, 15, 25),
			get(3, "song-2", shaB, 200, 30, 40),
			del(4, "song-2", 204, 45, 60),
			get(5, "song-1", shaA, 200, 55, 65),
			get(6, "song-2", "", 404, 70, 80),
		}},
		{"closed intervals: a return and a call at the same instant are concurrent", []string{
			put(0, "song-1", shaA, 201, 0, 10),
			get(1, "song-1", "", 404, 10, 20),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := check(t, tc.lines); r.Outcome != porcupine.Ok {
				t.Fatalf("outcome %v (failed ids %v), want Ok", r.Outcome, r.FailedIDs)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	valid := put(0, "song-1", shaA, 201, 0, 10)
	tests := []struct {
		name, bad, want string
	}{
		{"not JSON", `{"client":1,`, "not a JSON operation"},
		{"two values", valid + " {}", "more than one JSON value"},
		{"unknown field", `{"client":1,"op":"get","id":"x","status":404,"call_ns":1,"return_ns":2,"sha":"ab"}`, `unknown field "sha"`},
		{"missing status", `{"client":1,"op":"get","id":"x","call_ns":1,"return_ns":2}`, `missing field "status"`},
		{"missing call_ns", `{"client":1,"op":"get","id":"x","status":404,"return_ns":2}`, `missing field "call_ns"`},
		{"unknown op", line(1, "list", "x", "", 200, "", 1, 2), `op "list" is not put, delete or get`},
		{"negative client", get(-1, "x", "", 404, 1, 2), "client -1 is negative"},
		{"empty id", get(1, "", "", 404, 1, 2), "empty id"},
		{"not an HTTP status", get(1, "x", "", 999, 1, 2), "status 999 is not an HTTP status"},
		{"return before call", get(1, "x", "", 404, 5, 2), "return_ns 2 is before call_ns 5"},
		{"put without content", put(1, "x", "", 201, 1, 2), "put: sha256 \"\" is not 64 hex digits"},
		{"put with a bad sha", put(1, "x", "xyz", 201, 1, 2), "is not 64 hex digits"},
		{"get 200 without content", get(1, "x", "", 200, 1, 2), "get 200: sha256"},
		{"put 409 without an error code", put(1, "x", shaA, 409, 1, 2), "put 409 without its \"error\" code"},
		{"unexpected put status", put(1, "x", shaA, 302, 1, 2), "unexpected status for put 302"},
		{"unexpected delete status", del(1, "x", 200, 1, 2), "unexpected status for delete 200"},
		{"unexpected get status", get(1, "x", "", 204, 1, 2), "unexpected status for get 204"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bad line is line 3, after a valid line and a blank one.
			_, err := Parse(strings.NewReader(valid + "\n\n" + tc.bad + "\n" + valid + "\n"))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			pe, ok := err.(*ParseError)
			if !ok || pe.Line != 3 || !strings.Contains(pe.Msg, tc.want) {
				t.Fatalf("error %q, want line 3: ...%s...", err, tc.want)
			}
		})
	}
}

func TestParseClassifies(t *testing.T) {
	h, err := Parse(strings.NewReader(strings.Join([]string{
		put(0, "x", strings.ToUpper(shaA), 201, 1, 2), // upper-case hex is accepted
		put(1, "x", shaA, 0, 3, 4),
		del(2, "x", 500, 5, 6),
		get(3, "x", "", 0, 7, 8),
		put409(4, "x", shaB, "conflict", 9, 10),
		put409(5, "x", shaB, "failed_precondition", 9, 10),
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != 3 || h.Dropped != 3 {
		t.Fatalf("kept %d, dropped %d; want 3 and 3", len(h.Ops), h.Dropped)
	}
	if h.Ops[0].SHA256 != shaA || h.Ops[0].Unknown || h.Ops[0].ReturnNs != 2 {
		t.Errorf("acknowledged put: %+v", h.Ops[0])
	}
	for _, op := range h.Ops[1:] {
		if !op.Unknown || op.ReturnNs != Infinity {
			t.Errorf("line %d: want an unknown outcome returning at +infinity, got %+v", op.Line, op)
		}
	}
}
