package ledgerctl

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/services/natsbus"
	"github.com/cqhrss/subsidyledger/services/simulate"
)

// demoSecret keys the simulated (fictitious) ID numbers when no secret is
// configured.
const demoSecret = "ledgerctl simulate: demo person-key secret, not for real data"

func cmdSimulate(ctx context.Context, e *env, args []string) error {
	f := newFlags(e, "simulate", "[--nats-url URL] [--seed N] [--year Y] [--trainees N] [--pace fast|demo|DURATION] [--head-start N] [--personal-data=false]")
	nf := addNATSFlags(f)
	keyFile := f.str("key-file", "", "a file holding the person-key secret (default: LEDGER_PERSON_KEY, else a fixed demo secret)")
	seed := f.Uint64("seed", 1, "the programme's seed: the same seed publishes the same facts")
	year := f.Int("year", 2025, "the calendar year of the assessments (2025–2030)")
	trainees := f.Int("trainees", 100, "trainees (about 8 to 14 facts each); --violations adds the certificate spike's cohort of about 230 more")
	officials := f.Bool("officials", true, "include the district officials' confirmations, approvals, notices, payment requests and settlements")
	violations := f.Bool("violations", true, "plant violations for supervisors to find: a certificate spike (an evaluation institution certifies a cohort of extra trainees in one month) and, with --officials, certificates revoked after payment (clawbacks) and a shared payee account")
	pace := f.String("pace", "fast", "fast (as quickly as JetStream acknowledges), demo (5 facts a second) or a pause between facts (e.g. 50ms)")
	workers := f.Int("workers", 8, "concurrent publishers at --pace fast")
	headStart := f.Int("head-start", 0, "with a paced --pace: publish the first N trainee facts at once, then pace the rest (a demo then starts with the year's registrations and enrolments in)")
	personalData := f.Bool("personal-data", true, "also publish each trainee's plain ID number, name and payee account on <prefix>.pii.enrolment for the ledger's encrypted vault (never into the log)")
	progress := f.str("progress", "auto", "progress of a paced run on stderr: auto (a bar on a terminal, else a line every 1,000 facts), on or off")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	if *year < 2025 || *year > 2030 {
		return usageErrorf("--year %d: the programme runs 2025–2030", *year)
	}
	if *trainees < 0 || *workers < 1 || *headStart < 0 {
		return usageErrorf("--trainees, --workers and --head-start must be positive")
	}
	var pause time.Duration
	switch *pace {
	case "fast":
	case "demo":
		pause = 200 * time.Millisecond
	default:
		d, err := time.ParseDuration(*pace)
		if err != nil || d < 0 {
			return usageErrorf("--pace %q: want fast, demo or a duration such as 50ms", *pace)
		}
		pause = d
	}
	kr, err := keyer(e, *keyFile)
	if err != nil {
		if *keyFile != "" || e.getenv("LEDGER_PERSON_KEY") != "" {
			return err
		}
		fmt.Fprintln(e.stderr, "simulate: no LEDGER_PERSON_KEY: keying the fictitious ID numbers with a fixed demo secret")
		kr, _ = person.NewKeyer([]byte(demoSecret))
	}
	prog, err := simulate.New(simulate.Config{Seed: *seed, Year: int32(*year), Trainees: *trainees, Keyer: kr, Officials: *officials, Violations: *violations})
	if err != nil {
		return usageErrorf("%v", err)
	}
	nc, js, err := nf.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	subj := natsbus.Subjects{Prefix: *nf.prefix}
	inbound := subj.InboundPrefix()

	start := time.Now()
	ref := prog.Reference()
	lanes := make([][]simulate.Fact, 0, prog.Trainees())
	profiles := make([]simulate.Profile, 0, prog.Trainees())
	total := len(ref)
	for i := range prog.Trainees() {
		fs, pr := prog.Trainee(i)
		profiles = append(profiles, pr)
		lanes = append(lanes, fs)
		total += len(fs)
	}
	cohort := ""
	if sp := prog.Spike(); sp != nil {
		cohort = fmt.Sprintf(" (and a cohort of %s certified by %s in %d-%02d: a planted certificate spike)", group(uint64(sp.Cohort)), sp.Institution, sp.Year, int(sp.Month))
	}
	fmt.Fprintf(e.stderr, "simulate: seed %d, year %d: %s reference facts and %s trainees%s, %s facts in all\n",
		*seed, *year, group(uint64(len(ref))), group(uint64(*trainees)), cohort, group(uint64(total)))
	if *personalData {
		// The enrolment system's personal data, for the vault: first, so
		// that lookups work as soon as a trainee appears.
		pds := make([]simulate.Personal, 0, len(profiles))
		for _, pr := range profiles {
			pds = append(pds, prog.PersonalData(pr))
		}
		if err := simulate.PublishPersonal(ctx, js, subj, pds, *workers); err != nil {
			return failf("publishing personal data on %s: %v", subj.PII("enrolment"), err)
		}
		fmt.Fprintf(e.stderr, "simulate: personal data of %s trainees published on %s\n", group(uint64(len(pds))), subj.PII("enrolment"))
	}
	// Reference data first, in order: the trainees' facts refer to it.
	if err := simulate.PublishLanes(ctx, js, inbound, [][]simulate.Fact{ref}, 1); err != nil {
		return failf("publishing the reference data: %v", err)
	}
	if pause == 0 {
		if err := simulate.PublishLanes(ctx, js, inbound, lanes, *workers); err != nil {
			return failf("publishing: %v", err)
		}
	} else {
		// One fact at a time, trainees interleaved, as a day's traffic.
		bar, err := newProgress(e.stderr, *progress, "simulate")
		if err != nil {
			return err
		}
		defer bar.done()
		sent := len(ref)
		t := time.NewTicker(pause)
		defer t.Stop()
		for k := 0; ; k++ {
			more := false
			for _, l := range lanes {
				if k >= len(l) {
					continue
				}
				more = true
				if sent-len(ref) >= *headStart {
					select {
					case <-t.C:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				m, err := simulate.Msg(inbound, l[k], false)
				if err == nil {
					_, err = js.PublishMsg(ctx, m)
				}
				if err != nil {
					return failf("publishing %s: %v", l[k].MsgID, err)
				}
				sent++
				switch {
				case bar.on():
					bar.update(uint64(sent), uint64(total), int64(sent), "facts")
				case sent%1000 == 0 && *progress != "off":
					// Not a terminal: a line now and then, so that what
					// make run printed first does not scroll away.
					fmt.Fprintf(e.stderr, "simulate: %s of %s facts\n", group(uint64(sent)), group(uint64(total)))
				}
			}
			if !more {
				break
			}
		}
	}
	d := time.Since(start)
	fmt.Fprint(e.stdout, prog.Expect(profiles))
	fmt.Fprintf(e.stdout, "published %s facts in %s (%s facts/s)\n", group(uint64(total)), d.Round(time.Millisecond),
		strconv.FormatFloat(float64(total)/max(d.Seconds(), 1e-9), 'f', 0, 64))
	return nil
}
