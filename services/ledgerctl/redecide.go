package ledgerctl

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/redecide"
)

// redecideJSON is redecide's --json output.
type redecideJSON struct {
	OK             bool             `json:"ok"`
	Store          string           `json:"store"`
	RuleSetVersion string           `json:"rule_set_version"`
	Through        uint64           `json:"through"`
	Events         int64            `json:"events"`
	Facts          int64            `json:"facts"`
	Derived        int64            `json:"derived"`
	Rejections     int64            `json:"rejections"`
	RejMatched     int64            `json:"rejections_matched"`
	RejUndecided   int64            `json:"rejections_not_decided"`
	RejAltered     int64            `json:"rejections_payload_altered"`
	Other          int64            `json:"other_ledger_events"`
	Matched        int64            `json:"matched"`
	Mismatches     int64            `json:"mismatches"`
	Orphans        int64            `json:"orphans"`
	ByVersion      map[string]int64 `json:"facts_by_recorded_rule_set"`
	Adopted        []adoptionJSON   `json:"rule_sets_adopted"`
	Problems       []string         `json:"problems"`
}

type adoptionJSON struct {
	Position    uint64 `json:"position"`
	Version     string `json:"version"`
	Fingerprint string `json:"fingerprint"`
	Behaviour   int    `json:"behaviour"`
}

// maxShown bounds the mismatches printed (all are counted).
const maxShown = 100

func cmdRedecide(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "redecide", "[--store PATH] [--rule-set FILE] [--through POSITION] [--json]\n\n"+
		"Decides every fact of the log again, in the order recorded, on the state folded from\n"+
		"the events before it, and compares the events it derives with those recorded after it\n"+
		"(ids, types, payloads field by field). A rejection the rules made is decided again at\n"+
		"the point of the log where it was decided, and must be rejected for the same reason;\n"+
		"other rejections (no fact, undecodable, payload masked or cut, recorded before\n"+
		"rejections noted their point) are counted, not decided again.\n"+
		"Exit status: 0 every decision reproduced; 1 some did not (each listed); 2 usage error")
	storeSpec := storeFlag(f)
	rsFile := f.str("rule-set", "", "the rule set file ledgerd ran with (--rule-set), for the part of the log before its first RuleSetAdopted (decided at behaviour 1, as every release before rules 2026.6); default: the built-in rule set")
	through := f.Uint64("through", 0, "stop after this position (default: the end of the log)")
	progress := f.str("progress", "auto", "progress bar on stderr: auto (on a terminal), on or off")
	asJSON := f.Bool("json", false, "print the report as JSON")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	rs, err := ruleSet("--rule-set", *rsFile)
	if err != nil {
		return err
	}
	bar, err := newProgress(e.stderr, *progress, "redecide")
	if err != nil {
		return err
	}
	s, err := openStore(*storeSpec)
	if err != nil {
		return err
	}
	defer s.Close()
	head, err := s.Head(ctx)
	if err != nil {
		return failf("redecide: %v", err)
	}
	if *through != 0 {
		head = min(head, events.Position(*through))
	}
	var shown []string
	var n int64
	sum, err := redecide.Run(ctx, s, redecide.Options{RuleSet: rs, Through: events.Position(*through),
		Report: func(m redecide.Mismatch) {
			if len(shown) < maxShown {
				shown = append(shown, m.String())
			}
		},
		Progress: func(p events.Position) {
			n = int64(p)
			bar.update(uint64(p), uint64(head), n, "events")
		}})
	bar.done()
	if err != nil {
		return failf("redecide: the replay stopped (not a verdict on the decisions): %v", err)
	}
	if *asJSON {
		out := redecideJSON{OK: sum.OK(), Store: s.Path(), RuleSetVersion: rs.Version, Through: uint64(sum.Through), Events: sum.Events, Facts: sum.Facts,
			Derived: sum.Derived, Rejections: sum.Rejections, RejMatched: sum.RejectionsMatched,
			RejUndecided: sum.RejectionsUndecided + sum.RejectionsAltered, RejAltered: sum.RejectionsAltered, Other: sum.Other, Matched: sum.Matched, Mismatches: sum.Mismatches, Orphans: sum.Orphans,
			ByVersion: sum.ByVersion, Adopted: []adoptionJSON{}, Problems: shown}
		for _, a := range sum.Adopted {
			out.Adopted = append(out.Adopted, adoptionJSON{Position: uint64(a.Position), Version: a.Version, Fingerprint: a.Fingerprint, Behaviour: a.Behaviour})
		}
		if out.Problems == nil {
			out.Problems = []string{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		w := e.stdout
		fmt.Fprintf(w, "store:      %s\n", s.Path())
		if len(sum.Adopted) == 0 || sum.Adopted[0].Position > 1 {
			fmt.Fprintf(w, "rule set:   %s (fingerprint %s)", rs.Version, rs.Fingerprint()[:12])
			if len(sum.Adopted) == 0 {
				fmt.Fprint(w, " for the whole log: it records none\n")
			} else {
				fmt.Fprintf(w, " up to position %s\n", group(uint64(sum.Adopted[0].Position)))
			}
		}
		for _, a := range sum.Adopted {
			fmt.Fprintf(w, "adopted:    rule set %s (fingerprint %.12s, behaviour %d) at position %s, recorded in the log\n", a.Version, a.Fingerprint, a.Behaviour, group(uint64(a.Position)))
		}
		fmt.Fprintf(w, "read:       %s up to position %s: %s facts, %s derived, %s rejections, %s other\n",
			nEvents(sum.Events), group(uint64(sum.Through)), group(uint64(sum.Facts)), group(uint64(sum.Derived)), group(uint64(sum.Rejections)), group(uint64(sum.Other)))
		fmt.Fprintf(w, "rejections: %s decided again and rejected for the reason recorded; not decided again: %s the rules did not make or that were recorded without their point in the log, %s whose payload was masked or cut\n",
			group(uint64(sum.RejectionsMatched)), group(uint64(sum.RejectionsUndecided)), group(uint64(sum.RejectionsAltered)))
		fmt.Fprint(w, "recorded:   ")
		for i, v := range slices.Sorted(maps.Keys(sum.ByVersion)) {
			if i > 0 {
				fmt.Fprint(w, ", ")
			}
			name := "rules " + v
			if v == "" {
				name = "deriving nothing"
			}
			fmt.Fprintf(w, "%s facts %s", group(uint64(sum.ByVersion[v])), name)
		}
		fmt.Fprintln(w)
		for _, v := range slices.Sorted(maps.Keys(sum.ByVersion)) {
			if v != "" && v != rs.Version {
				fmt.Fprintf(w, "            decisions recorded under rules %s were compared with that label in place of %s (nothing in the rules branches on it)\n", v, rs.Version)
			}
		}
		if sum.OK() {
			fmt.Fprintf(w, "verdict:    OK: every one of the %s facts decided again derives what was recorded, and every one of the %s rejections decided again is rejected as recorded\n",
				group(uint64(sum.Facts)), group(uint64(sum.RejectionsMatched)))
		} else {
			fmt.Fprintf(w, "verdict:    DIFFERENT: %s decisions (of %s facts and %s rejections decided again) did not reproduce; %s derived events without their fact\n",
				group(uint64(sum.Mismatches)), group(uint64(sum.Facts)), group(uint64(sum.RejectionsDecided)), group(uint64(sum.Orphans)))
			for _, p := range shown {
				fmt.Fprintf(w, "  %s\n", p)
			}
			if int64(len(shown)) < sum.Mismatches+sum.Orphans {
				fmt.Fprintf(w, "  ... and %s more\n", group(uint64(sum.Mismatches+sum.Orphans-int64(len(shown)))))
			}
			if len(sum.ByVersion) > 1 || sum.ByVersion[rs.Version] == 0 {
				fmt.Fprintf(w, "            decisions recorded under an earlier version of the rules may differ where the rules changed since; a ledger that ran with its own rule set file: give it with --rule-set\n")
			}
		}
	}
	if !sum.OK() {
		return failf("redecide: %s of %s facts did not reproduce their recorded decisions", group(uint64(sum.Mismatches+sum.Orphans)), group(uint64(sum.Facts)))
	}
	return nil
}
