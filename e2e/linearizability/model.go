package linearizability

import (
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// The porcupine input and output of an operation. The state of one id is a string: "" when
// absent, the content's sha256 when present.
type input struct {
	kind, id, sha string
}

type output struct {
	status  int
	unknown bool // put or delete without a known outcome: accepts both
}

const absent = ""

// step is the sequential specification of one id (the table of the package comment).
func step(state, in, out interface{}) (bool, interface{}) {
	s, i, o := state.(string), in.(input), out.(output)
	switch i.kind {
	case "put":
		switch {
		case o.unknown: // took effect here: created if absent, else refused without a change
			if s == absent {
				return true, i.sha
			}
			return true, s
		case o.status == 201:
			return s == absent, i.sha
		case o.status == 200:
			return s == i.sha, s
		default: // 409 already_exists
			return s != absent && s != i.sha, s
		}
	case "delete":
		switch {
		case o.unknown:
			return true, absent
		case o.status == 204:
			return s != absent, absent
		default: // 404
			return s == absent, s
		}
	default: // get
		if o.status == 200 {
			return s == i.sha, s
		}
		return s == absent, s
	}
}

// partitionByID puts each id's operations in their own partition, ordered by id so that the
// partitions' indices in porcupine's results can be mapped back to ids.
func partitionByID(history []porcupine.Operation) [][]porcupine.Operation {
	byID := map[string][]porcupine.Operation{}
	for _, op := range history {
		id := op.Input.(input).id
		byID[id] = append(byID[id], op)
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([][]porcupine.Operation, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func describeOp(in, out interface{}) string {
	i, o := in.(input), out.(output)
	what := i.kind
	if i.kind == "put" {
		what = "put " + short(i.sha)
	}
	if o.unknown {
		if o.status == 0 {
			return what + " -> ? (no answer)"
		}
		return fmt.Sprintf("%s -> ? (%d)", what, o.status)
	}
	if i.kind == "get" && o.status == 200 {
		return fmt.Sprintf("get -> 200 %s", short(i.sha))
	}
	return fmt.Sprintf("%s -> %d", what, o.status)
}

func describeState(state interface{}) string {
	if s := state.(string); s != absent {
		return "present(" + short(s) + ")"
	}
	return "absent"
}

// catalogModel is the porcupine model of the catalog, partitioned per id.
var catalogModel = porcupine.Model{
	Partition: partitionByID,
	Init:      func() interface{} { return absent },
	Step:      step,
	Hash: func(state interface{}) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	DescribeOperation:         describeOp,
	DescribeState:             describeState,
	DescribeOperationMetadata: func(m interface{}) string { return fmt.Sprintf("history line %d", m.(int)) },
}

// Result of a check.
type Result struct {
	Outcome porcupine.CheckResult // Ok, Illegal or Unknown (timed out)
	IDs     int
	// Illegal only: the ids whose operations are not linearizable, sorted.
	FailedIDs []string
	info      porcupine.LinearizationInfo
}

func toPorcupine(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		out[i] = porcupine.Operation{
			ClientId: op.Client,
			Input:    input{kind: op.Kind, id: op.ID, sha: op.SHA256},
			Call:     op.CallNs,
			Output:   output{status: op.Status, unknown: op.Unknown},
			Return:   op.ReturnNs,
			Metadata: op.Line,
		}
	}
	return out
}

// Check runs porcupine on the history; timeout 0 means no limit.
func Check(h History, timeout time.Duration) Result {
	ops := toPorcupine(h.Ops)
	outcome, info := porcupine.CheckOperationsVerbose(catalogModel, ops, timeout)
	parts := partitionByID(ops)
	r := Result{Outcome: outcome, IDs: len(parts), info: info}
	if outcome == porcupine.Illegal {
		// A partition is linearizable exactly when porcupine found a linearization of all its
		// operations; the partial linearizations are indexed like partitionByID's partitions.
		for p, partials := range info.PartialLinearizations() {
			complete := false
			for _, l := range partials {
				complete = complete || len(l) == len(parts[p])
			}
			if !complete {
				r.FailedIDs = append(r.FailedIDs, parts[p][0].Input.(input).id)
			}
		}
	}
	return r
}
