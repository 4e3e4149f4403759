package linearizability

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Exit codes of dispotify-lincheck.
const (
	ExitLinearizable    = 0
	ExitNotLinearizable = 1
	ExitBadInput        = 2
	ExitTimedOut        = 3
)

const usage = "usage: dispotify-lincheck [--timeout 60s] [--html out.html] history.jsonl"

// Main is dispotify-lincheck: it checks the history file named in args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dispotify-lincheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	timeout := fs.Duration("timeout", 60*time.Second, "give up (exit 3) after this long; 0 = no limit")
	html := fs.String("html", "", "write porcupine's visualisation of the check to this HTML file")
	if err := fs.Parse(args); err != nil {
		return ExitBadInput
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return ExitBadInput
	}
	path := fs.Arg(0)

	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "dispotify-lincheck: %v\n", err)
		return ExitBadInput
	}
	h, err := Parse(f)
	f.Close()
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "dispotify-lincheck: %s:%d: %s\n", path, pe.Line, pe.Msg)
		} else {
			fmt.Fprintf(stderr, "dispotify-lincheck: %s: %v\n", path, err)
		}
		return ExitBadInput
	}

	start := time.Now()
	r := Check(h, *timeout)
	elapsed := time.Since(start).Round(time.Millisecond)
	if *html != "" {
		if err := porcupine.VisualizePath(catalogModel, r.info, *html); err != nil {
			fmt.Fprintf(stderr, "dispotify-lincheck: writing %s: %v\n", *html, err)
		}
	}
	summary := fmt.Sprintf("%d operations (%d more dropped: no effect, or a get without answer), %d ids",
		len(h.Ops), h.Dropped, r.IDs)
	switch r.Outcome {
	case porcupine.Ok:
		fmt.Fprintf(stdout, "dispotify-lincheck: %s: linearizable (checked in %v)\n", summary, elapsed)
		return ExitLinearizable
	case porcupine.Unknown:
		fmt.Fprintf(stdout, "dispotify-lincheck: %s: unknown, the check timed out after %v\n", summary, *timeout)
		return ExitTimedOut
	}
	fmt.Fprintf(stdout, "dispotify-lincheck: %s: NOT linearizable; failing ids: %d\n", summary, len(r.FailedIDs))
	for _, id := range r.FailedIDs {
		printID(stdout, h, id)
	}
	if *html != "" {
		fmt.Fprintf(stdout, "visualisation: %s\n", *html)
	}
	return ExitNotLinearizable
}

// printID prints one id's operations in the order of their calls, with times in milliseconds
// from the first call of the history: no linearization of them exists.
func printID(w io.Writer, h History, id string) {
	var ops []Op
	origin := Infinity
	for _, op := range h.Ops {
		if op.CallNs < origin {
			origin = op.CallNs
		}
		if op.ID == id {
			ops = append(ops, op)
		}
	}
	sort.SliceStable(ops, func(a, b int) bool { return ops[a].CallNs < ops[b].CallNs })
	fmt.Fprintf(w, "\nid %q: no order of these %d operations explains every answer:\n", id, len(ops))
	ms := func(ns int64) string { return fmt.Sprintf("%.3f", float64(ns-origin)/1e6) }
	for _, op := range ops {
		ret := "never known"
		if !op.Unknown {
			ret = ms(op.ReturnNs)
		}
		in := input{kind: op.Kind, id: op.ID, sha: op.SHA256}
		out := output{status: op.Status, unknown: op.Unknown}
		fmt.Fprintf(w, "  [%12s ms .. %12s ms] client %-4d %-36s (line %d)\n",
			ms(op.CallNs), ret, op.Client, describeOp(in, out), op.Line)
	}
}
