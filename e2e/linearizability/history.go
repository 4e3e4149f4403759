package linearizability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// Record is one line of a history file, as written by the client.
type Record struct {
	Client   *int    `json:"client"`
	Op       *string `json:"op"`
	ID       *string `json:"id"`
	SHA256   string  `json:"sha256"`
	Status   *int    `json:"status"`
	Error    string  `json:"error"`
	CallNs   *int64  `json:"call_ns"`
	ReturnNs *int64  `json:"return_ns"`
}

// Op is one operation kept for checking.
type Op struct {
	Line     int // in the history file, from 1
	Client   int
	Kind     string // "put", "delete" or "get"
	ID       string
	SHA256   string // lower case; empty for delete and 404 get
	Status   int    // as recorded; 0 or 5xx when Unknown
	Unknown  bool   // put or delete whose outcome the client does not know
	CallNs   int64
	ReturnNs int64 // math.MaxInt64 when Unknown
}

// History is a parsed history file.
type History struct {
	Ops     []Op
	Dropped int // calls that had no effect, or gets without an answer
}

// Infinity is the return time of an operation whose outcome is unknown.
const Infinity = int64(math.MaxInt64)

// ParseError names the line of the history that is wrong.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Parse reads a history in the JSON Lines format of the package comment.
func Parse(r io.Reader) (History, error) {
	var h History
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields() // a misspelt field would otherwise read as its zero value
		if err := dec.Decode(&rec); err != nil {
			return History{}, &ParseError{line, "not a JSON operation: " + err.Error()}
		}
		if dec.More() {
			return History{}, &ParseError{line, "more than one JSON value on the line"}
		}
		op, keep, err := toOp(rec)
		if err != nil {
			return History{}, &ParseError{line, err.Error()}
		}
		if !keep {
			h.Dropped++
			continue
		}
		op.Line = line
		h.Ops = append(h.Ops, op)
	}
	if err := sc.Err(); err != nil {
		return History{}, &ParseError{line + 1, err.Error()}
	}
	return h, nil
}

// toOp validates a record and classifies it: keep is false for a call that had no effect.
func toOp(r Record) (op Op, keep bool, err error) {
	for _, f := range []struct {
		name    string
		missing bool
	}{
		{"client", r.Client == nil}, {"op", r.Op == nil}, {"id", r.ID == nil},
		{"status", r.Status == nil}, {"call_ns", r.CallNs == nil}, {"return_ns", r.ReturnNs == nil},
	} {
		if f.missing {
			return Op{}, false, fmt.Errorf("missing field %q", f.name)
		}
	}
	op = Op{Client: *r.Client, Kind: *r.Op, ID: *r.ID, SHA256: strings.ToLower(r.SHA256),
		Status: *r.Status, CallNs: *r.CallNs, ReturnNs: *r.ReturnNs}
	switch {
	case op.Client < 0:
		return Op{}, false, fmt.Errorf("client %d is negative", op.Client)
	case op.ID == "":
		return Op{}, false, fmt.Errorf("empty id")
	case op.Status != 0 && (op.Status < 100 || op.Status > 599):
		return Op{}, false, fmt.Errorf("status %d is not an HTTP status (or 0 for no answer)", op.Status)
	case op.ReturnNs < op.CallNs:
		return Op{}, false, fmt.Errorf("return_ns %d is before call_ns %d", op.ReturnNs, op.CallNs)
	}

	unknown := op.Status == 0 || op.Status >= 500
	class := fmt.Sprintf("%s %d", op.Kind, op.Status)
	switch op.Kind {
	case "put":
		if err := checkSHA(op.SHA256); err != nil {
			return Op{}, false, fmt.Errorf("put: %v", err)
		}
		switch {
		case op.Status == 201 || op.Status == 200 || unknown:
		case op.Status == 409 && r.Error == "":
			return Op{}, false, fmt.Errorf("put 409 without its \"error\" code (already_exists or conflict)")
		case op.Status == 409 && r.Error == "already_exists":
		case op.Status >= 400 && op.Status < 500:
			return Op{}, false, nil // refused: a lease held by another upload, a bad request...
		default:
			return Op{}, false, fmt.Errorf("unexpected status for %s", class)
		}
	case "delete":
		op.SHA256 = ""
		switch {
		case op.Status == 204 || op.Status == 404 || unknown:
		case op.Status >= 400 && op.Status < 500:
			return Op{}, false, nil
		default:
			return Op{}, false, fmt.Errorf("unexpected status for %s", class)
		}
	case "get":
		switch {
		case op.Status == 200:
			if err := checkSHA(op.SHA256); err != nil {
				return Op{}, false, fmt.Errorf("get 200: %v", err)
			}
		case op.Status == 404:
			op.SHA256 = ""
		case unknown, op.Status >= 400 && op.Status < 500:
			// A read without an answer changed nothing and tells nothing.
			return Op{}, false, nil
		default:
			return Op{}, false, fmt.Errorf("unexpected status for %s", class)
		}
	default:
		return Op{}, false, fmt.Errorf("op %q is not put, delete or get", op.Kind)
	}
	if unknown {
		op.Unknown = true
		op.ReturnNs = Infinity
	}
	return op, true, nil
}

func checkSHA(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("sha256 %q is not 64 hex digits", s)
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("sha256 %q is not 64 hex digits", s)
		}
	}
	return nil
}
