package linearizability

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainExitCodesAndOutput(t *testing.T) {
	dir := t.TempDir()
	html := filepath.Join(dir, "out.html")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings, in order
		stderr     string
		wantHTML   bool
		htmlOutput string
	}{
		{name: "linearizable", args: []string{"testdata/valid.jsonl"}, code: ExitLinearizable,
			stdout: []string{"6 operations (1 more dropped", "2 ids", "linearizable"}},
		{name: "stale read, with a visualisation", args: []string{"--html", html, "testdata/stale-read.jsonl"},
			code: ExitNotLinearizable, wantHTML: true,
			stdout: []string{"NOT linearizable", `id "song-1"`, "put aaaaaaaaaaaa -> 201", "(line 1)",
				"delete -> 204", "(line 3)", "get -> 200 aaaaaaaaaaaa", "(line 4)", "visualisation: " + html}},
		{name: "bad line", args: []string{"testdata/bad-status.jsonl"}, code: ExitBadInput,
			stderr: "testdata/bad-status.jsonl:2: unexpected status for get 302"},
		{name: "missing file", args: []string{"testdata/nonexistent.jsonl"}, code: ExitBadInput,
			stderr: "nonexistent.jsonl"},
		{name: "no file", args: nil, code: ExitBadInput, stderr: "usage: dispotify-lincheck"},
		{name: "unknown flag", args: []string{"--frobnicate", "testdata/valid.jsonl"}, code: ExitBadInput,
			stderr: "frobnicate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, &stdout, &stderr)
			}
			rest := stdout.String()
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order):\n%s", want, &stdout)
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, &stderr)
			}
			if tc.wantHTML {
				if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte("<html")) {
					t.Errorf("no visualisation in %s: %v", html, err)
				}
			}
		})
	}
}

// A history far too long to check in a nanosecond: the result is unknown, exit 3.
func TestMainTimeout(t *testing.T) {
	var b strings.Builder
	for i := int64(0); i < 20000; i++ {
		t0 := i * 100
		if i%2 == 0 {
			b.WriteString(put(0, "song-1", shaA, 201, t0, t0+10) + "\n")
		} else {
			b.WriteString(del(0, "song-1", 204, t0, t0+10) + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "long.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"--timeout", "1ns", path}, &stdout, &stderr); code != ExitTimedOut {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, ExitTimedOut, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "timed out") {
		t.Errorf("stdout: %s", &stdout)
	}
}
