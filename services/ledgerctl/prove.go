package ledgerctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/cqhrss/subsidyledger/events/merkle"
)

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return usageErrorf("cannot read %s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return failf("%s: %v", path, err)
	}
	return nil
}

func cmdProve(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || (args[0] != "inclusion" && args[0] != "consistency") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stderr, "usage: ledgerctl prove inclusion|consistency [flags] (ledgerctl prove inclusion -h)")
			return nil
		}
		return usageErrorf("usage: ledgerctl prove inclusion|consistency [flags]")
	}
	if args[0] == "inclusion" {
		return proveInclusion(ctx, e, args[1:])
	}
	return proveConsistency(ctx, e, args[1:])
}

func proveInclusion(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "prove inclusion", "--checkpoint FILE (--proof FILE | --server URL --position P) --verifier-key KEY")
	srv := addServerFlags(f)
	vf := addVerifierFlags(f)
	cpFile := f.String("checkpoint", "", "the signed checkpoint the event must be in (required)")
	proofFile := f.String("proof", "", "an inclusion proof saved as JSON")
	position := f.Uint64("position", 0, "with --server: the event's global position")
	save := f.String("out", "", "with --server: also save the proof as JSON here")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	v, err := vf.verifier()
	if err != nil {
		return err
	}
	if v == nil || *cpFile == "" {
		return usageErrorf("prove inclusion: --checkpoint and the verifier key are required")
	}
	cp, err := loadCheckpoint(v, *cpFile)
	if err != nil {
		return err
	}
	var p merkle.InclusionProof
	c, err := srv.client()
	if err != nil {
		return err
	}
	switch {
	case *proofFile != "":
		if err := readJSON(*proofFile, &p); err != nil {
			return err
		}
	case c != nil && *position > 0:
		q := url.Values{"position": {strconv.FormatUint(*position, 10)}, "tree_size": {itoa(cp.Size)}}
		if err := c.do(ctx, http.MethodGet, pathInclusion, q, &p); err != nil {
			return err
		}
		if *save != "" {
			b, _ := json.MarshalIndent(&p, "", "  ")
			if err := os.WriteFile(*save, append(b, '\n'), 0o644); err != nil {
				return failf("writing %s: %v", *save, err)
			}
		}
		if uint64(p.Leaf.Position) != *position {
			return failf("the server proved position %d, not %d", p.Leaf.Position, *position)
		}
	default:
		return usageErrorf("prove inclusion: give --proof FILE, or --server URL and --position P")
	}
	if err := merkle.CheckInclusion(cp, &p); err != nil {
		return failf("NOT PROVED: %v", err)
	}
	fmt.Fprintf(e.stdout, "proved: the event at position %d (%q revision %d, committed %s, hash %s) is leaf %d of the tree of %s events signed by %s\n",
		p.Leaf.Position, p.Leaf.Stream, p.Leaf.Revision, p.Leaf.Committed.Format("2006-01-02T15:04:05.000000000Z07:00"), p.Leaf.Hash, p.LeafIndex, group(uint64(cp.Size)), cp.Origin)
	return nil
}

func proveConsistency(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "prove consistency", "--old FILE --new FILE (--proof FILE | --server URL) --verifier-key KEY")
	srv := addServerFlags(f)
	vf := addVerifierFlags(f)
	oldFile := f.String("old", "", "the earlier signed checkpoint (required)")
	newFile := f.String("new", "", "the later signed checkpoint (required)")
	proofFile := f.String("proof", "", "a consistency proof saved as JSON")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	v, err := vf.verifier()
	if err != nil {
		return err
	}
	if v == nil || *oldFile == "" || *newFile == "" {
		return usageErrorf("prove consistency: --old, --new and the verifier key are required")
	}
	older, err := loadCheckpoint(v, *oldFile)
	if err != nil {
		return err
	}
	newer, err := loadCheckpoint(v, *newFile)
	if err != nil {
		return err
	}
	p := merkle.ConsistencyProof{OldSize: older.Size, NewSize: newer.Size}
	c, err := srv.client()
	if err != nil {
		return err
	}
	switch {
	case *proofFile != "":
		if err := readJSON(*proofFile, &p); err != nil {
			return err
		}
	case older.Size == 0 || older.Size >= newer.Size:
		// Nothing to fetch: CheckConsistency compares the roots.
	case c != nil:
		q := url.Values{"old_size": {itoa(older.Size)}, "new_size": {itoa(newer.Size)}}
		if err := c.do(ctx, http.MethodGet, pathConsistency, q, &p); err != nil {
			return err
		}
	default:
		return usageErrorf("prove consistency: give --proof FILE or --server URL")
	}
	if err := merkle.CheckConsistency(older, newer, &p); err != nil {
		return failf("NOT CONSISTENT: %v", err)
	}
	fmt.Fprintf(e.stdout, "consistent: the tree of %s events extends the tree of %s events (both signed by %s)\n", group(uint64(newer.Size)), group(uint64(older.Size)), newer.Origin)
	return nil
}
