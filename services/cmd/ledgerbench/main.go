// Command ledgerbench measures the ledger's throughput and prints each
// figure beside a baseline measured in the same run, on a store in a
// temporary directory:
//
//	go run ./services/cmd/ledgerbench [-rounds 2] [-read 200000] ...
//
// `ledgerbench soak` (soak.go) is the long run of `make soak` instead:
// sustained ingest at a steady rate with queries running.
//
// Each area adds its rows in its own file (store.go: the embedded event
// store) by listing a suite in suites.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/services/ledgerd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "ledgerbench:", err)
		}
		os.Exit(1)
	}
}

// config holds the flags every suite may read.
type config struct {
	dir        string // scratch directory for stores
	rounds     int    // the store, audit and restart measurements are repeated and the best kept
	batch1     int    // appends at batch 1
	batch100   int    // appends at batch 100
	batch1000  int    // appends at batch 1000
	callers    int    // concurrent callers
	concurrent int    // appends per concurrent caller
	read       int    // events in the read-all store
	stall      int    // events appended while commit latency is watched
	// ingestTrainees: trainees (about 8 facts each) for ingest mode (b);
	// mode (a) takes a quarter of them.
	ingestTrainees int
	// projectionTrainees: trainees of the projections' rebuild store.
	projectionTrainees int
	// ledgerdFlags are extra flags for the in-process ledgerd.
	ledgerdFlags []string
	// ingestProfile receives a CPU profile of ingest mode (b) (nil: none).
	ingestProfile io.Writer
	// ingestMemBase and ingestMem receive heap profiles as of the start
	// and the end of ingest mode (b) (nil: none).
	ingestMemBase, ingestMem io.Writer
	auditEvents              int // events in the store of the audit (verify, seal, proof) figures
	log                      io.Writer
}

// ledgerdCommand re-executes this binary as ledgerd (soak runs ledgerd as
// a process of its own, so that its memory is measured alone).
const ledgerdCommand = "internal-ledgerd"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "soak":
			return runSoak(ctx, args[1:], stdout, stderr)
		case ledgerdCommand:
			return ledgerd.Run(ctx, args[1:], os.Getenv, stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("ledgerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg    config
		only   = fs.String("run", "", "run only the suites whose name matches this regular expression")
		keep   = fs.Bool("keep", false, "keep the scratch directory")
		strict = fs.Bool("strict", false, "exit with an error if a goal is not met")
		quiet  = fs.Bool("q", false, "do not report progress on stderr")
		cpu    = fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
		bprof  = fs.String("ingest-cpuprofile", "", "write a CPU profile of ingest mode (b)'s rounds only to this file (not with -cpuprofile)")
		bmem   = fs.String("ingest-memprofile", "", "write a heap profile as of the end of ingest mode (b)'s rounds to this file, and one as of their start to this file with .base appended: go tool pprof -sample_index=alloc_space -base FILE.base FILE shows what mode (b) allocated")
		mem    = fs.String("memprofile", "", "write a heap profile to this file at the end of the run: what the run allocated (go tool pprof -sample_index=alloc_space) and what is still live")
	)
	fs.StringVar(&cfg.dir, "dir", "", "scratch directory (default: a new temporary directory)")
	fs.IntVar(&cfg.rounds, "rounds", 2, "repeat the store and audit figures and the whole-ledgerd restart this many times and keep the best (the other figures are measured once per run)")
	fs.IntVar(&cfg.batch1, "batch1", 1000, "appends of 1 event for the batch-1 figures")
	fs.IntVar(&cfg.batch100, "batch100", 200, "appends of 100 events for the batch-100 figures")
	fs.IntVar(&cfg.batch1000, "batch1000", 100, "appends of 1,000 events for the batch-1000 figures")
	fs.IntVar(&cfg.callers, "callers", 16, "concurrent callers for the group-commit figure")
	fs.IntVar(&cfg.concurrent, "concurrent", 250, "appends of 1 event per concurrent caller")
	fs.IntVar(&cfg.read, "read", 200_000, "events in the store read by the read-all figures")
	fs.IntVar(&cfg.stall, "stall-events", 3_000_000, "events appended while the store suite watches commit latency as the ID index grows (the index merges its buffer from 1,048,576 buffered IDs on)")
	fs.Func("ledgerd-flag", "an extra flag for the in-process ledgerd of the ingest figures (repeatable), e.g. -ledgerd-flag=--feed-batch=1000", func(v string) error {
		cfg.ledgerdFlags = append(cfg.ledgerdFlags, v)
		return nil
	})
	fs.IntVar(&cfg.projectionTrainees, "projection-trainees", 20_000, "trainees (about 9.5 events each) in the store the projections are rebuilt from (1050000 for the issue's 10,000,000 events)")
	fs.IntVar(&cfg.ingestTrainees, "ingest-trainees", 20_000, "trainees (about 8 facts each) published in each of ingest mode (b)'s three rounds; mode (a) publishes a quarter as many (at 6,000, mode (b) lasted about 2 s and its figure swung by 10%)")
	fs.IntVar(&cfg.auditEvents, "audit-events", 500_000, "events in the store of the audit figures (verify, seal, proofs); the issue's row is 10000000")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ledgerbench [flags]\n       ledgerbench soak [flags]   (sustained ingest with queries: ledgerbench soak -h)\n\nMeasures the ledger against baselines measured in the same run.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; see -h", fs.Args())
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"rounds", cfg.rounds}, {"batch1", cfg.batch1}, {"batch100", cfg.batch100}, {"batch1000", cfg.batch1000},
		{"callers", cfg.callers}, {"concurrent", cfg.concurrent}, {"read", cfg.read}, {"stall-events", cfg.stall}, {"audit-events", cfg.auditEvents}} {
		if f.v < 1 {
			return fmt.Errorf("-%s must be at least 1, not %d", f.name, f.v)
		}
	}
	match, err := regexp.Compile(*only)
	if err != nil {
		return fmt.Errorf("-run: %v", err)
	}
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "ledgerbench-"); err != nil {
			return fmt.Errorf("cannot make a scratch directory: %v", err)
		}
		if !*keep {
			defer os.RemoveAll(cfg.dir)
		}
	} else if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return fmt.Errorf("-dir: %v", err)
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *bprof != "" {
		if *cpu != "" {
			return fmt.Errorf("-ingest-cpuprofile and -cpuprofile: one CPU profile at a time")
		}
		f, err := os.Create(*bprof)
		if err != nil {
			return fmt.Errorf("-ingest-cpuprofile: %v", err)
		}
		defer f.Close()
		cfg.ingestProfile = f
	}
	if *bmem != "" {
		for _, p := range []struct {
			name string
			w    *io.Writer
		}{{*bmem + ".base", &cfg.ingestMemBase}, {*bmem, &cfg.ingestMem}} {
			f, err := os.Create(p.name)
			if err != nil {
				return fmt.Errorf("-ingest-memprofile: %v", err)
			}
			defer f.Close()
			*p.w = f
		}
	}
	if *mem != "" {
		f, err := os.Create(*mem)
		if err != nil {
			return fmt.Errorf("-memprofile: %v", err)
		}
		defer f.Close()
		defer func() {
			runtime.GC() // the live figures as of the end of the run
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(stderr, "ledgerbench: -memprofile: %v\n", err)
			}
		}()
	}
	cfg.log = stderr
	if *quiet {
		cfg.log = io.Discard
	}

	start := time.Now()
	var rows []row
	for _, s := range suites {
		if !match.MatchString(s.name) {
			continue
		}
		fmt.Fprintf(cfg.log, "suite %s\n", s.name)
		got, err := s.run(ctx, &cfg)
		if err != nil {
			return fmt.Errorf("suite %s: %w", s.name, err)
		}
		rows = append(rows, got...)
	}
	fmt.Fprintf(stdout, "ledgerbench: %s/%s, %d CPUs, %s, best of %d where repeated (-rounds), scratch %s, %s\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), cfg.rounds, cfg.dir, time.Since(start).Round(100*time.Millisecond))
	if err := printTable(stdout, rows); err != nil {
		return err
	}
	if *strict {
		var unmet []string
		for _, r := range rows {
			if r.goal.met != nil && !r.goal.met(r) {
				unmet = append(unmet, r.name)
			}
		}
		if len(unmet) > 0 {
			return fmt.Errorf("goals not met: %s", strings.Join(unmet, "; "))
		}
	}
	return nil
}
