package ledgerctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/merkle"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// parseCheckpoint verifies a checkpoint given as signed-note text or as a
// subsidy.v1.AuditCheckpoint in protobuf JSON.
func parseCheckpoint(v *merkle.Verifier, b []byte) (merkle.Checkpoint, error) {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		m := &subsidyv1.AuditCheckpoint{}
		if err := protojson.Unmarshal(t, m); err != nil {
			return merkle.Checkpoint{}, fmt.Errorf("not an AuditCheckpoint in JSON: %w", err)
		}
		return v.OpenMessage(m)
	}
	return v.Open(b)
}

// loadCheckpoint reads and verifies a saved checkpoint file.
func loadCheckpoint(v *merkle.Verifier, path string) (merkle.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return merkle.Checkpoint{}, usageErrorf("cannot read checkpoint %s: %v", path, err)
	}
	c, err := parseCheckpoint(v, b)
	if err != nil {
		return c, failf("checkpoint %s: %v", path, err)
	}
	return c, nil
}

func cmdCheckpoint(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "checkpoint", "(--server URL [--new] [--since FILE] | --store PATH | --file FILE) [--out FILE] --verifier-key KEY")
	srv := addServerFlags(f)
	vf := addVerifierFlags(f)
	issue := f.Bool("new", false, "with --server: ask ledgerd to issue a checkpoint of everything committed now")
	since := f.String("since", "", "with --server: a checkpoint saved earlier; check that the new one extends it (consistency proof)")
	storeSpec := f.String("store", "", "read the last checkpoint recorded in this store file instead")
	file := f.String("file", "", "check a saved checkpoint file instead")
	out := f.String("out", "", "write the checkpoint's signed note to this file (to check later logs against it)")
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
	if v == nil {
		return usageErrorf("checkpoint: the verifier key is required (--verifier-key, --verifier-key-file or LEDGER_VERIFIER_KEY): a checkpoint is only worth its signature")
	}
	c, err := srv.client()
	if err != nil {
		return err
	}
	var cp merkle.Checkpoint
	switch {
	case c != nil:
		method := http.MethodGet
		if *issue {
			method = http.MethodPost
		}
		var raw []byte
		if err := c.do(ctx, method, pathCheckpoint, nil, &raw); err != nil {
			return err
		}
		if cp, err = parseCheckpoint(v, raw); err != nil {
			return failf("the server's checkpoint: %v", err)
		}
		if *since != "" {
			old, err := loadCheckpoint(v, *since)
			if err != nil {
				return err
			}
			var p merkle.ConsistencyProof
			q := url.Values{"old_size": {itoa(old.Size)}, "new_size": {itoa(cp.Size)}}
			if old.Size > 0 && old.Size < cp.Size {
				if err := c.do(ctx, http.MethodGet, pathConsistency, q, &p); err != nil {
					return err
				}
			} else {
				p = merkle.ConsistencyProof{OldSize: old.Size, NewSize: cp.Size}
			}
			if err := merkle.CheckConsistency(old, cp, &p); err != nil {
				return failf("the server's log does not extend your checkpoint %s: %v", *since, err)
			}
			fmt.Fprintf(e.stdout, "consistent: the tree of %s events extends your checkpoint of %s events\n", group(uint64(cp.Size)), group(uint64(old.Size)))
		}
	case *storeSpec != "":
		s, err := openStore(*storeSpec)
		if err != nil {
			return err
		}
		defer s.Close()
		recs, err := s.ReadStream(ctx, merkle.CheckpointStream, events.Backwards, events.End, 1)
		if errors.Is(err, events.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
			return failf("%s records no checkpoint", *storeSpec)
		}
		if err != nil {
			return failf("%v", err)
		}
		m := &subsidyv1.AuditCheckpoint{}
		if err := proto.Unmarshal(recs[0].Data, m); err != nil {
			return failf("the checkpoint at position %d: %v", recs[0].Position, err)
		}
		if cp, err = v.OpenMessage(m); err != nil {
			return failf("the checkpoint at position %d: %v", recs[0].Position, err)
		}
	case *file != "":
		if cp, err = loadCheckpoint(v, *file); err != nil {
			return err
		}
	default:
		return usageErrorf("checkpoint: give --server, --store or --file")
	}
	fmt.Fprintf(e.stdout, "checkpoint: %s events, root %s, signed by %s\n", group(uint64(cp.Size)), cp.Root, cp.Origin)
	if *out != "" {
		if err := os.WriteFile(*out, cp.Note, 0o644); err != nil {
			return failf("writing %s: %v", *out, err)
		}
		fmt.Fprintf(e.stdout, "saved to %s\n", *out)
	} else {
		fmt.Fprintf(e.stdout, "\n%s", cp.Note)
	}
	return nil
}
