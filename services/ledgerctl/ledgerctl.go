// Package ledgerctl is the supervisors' and operators' command-line tool for
// the subsidy ledger. The command in cmd/ledgerctl only calls Run.
//
// Commands (ledgerctl help COMMAND for their flags):
//
//	verify      walk a store file: hash links, the Merkle tree, checkpoints
//	audit       the timeline of a trainee, institution, entitlement, payment or stream
//	checkpoint  fetch, show and check signed checkpoints
//	prove       check an inclusion or consistency proof offline
//	keygen      make the Ed25519 key pair that signs checkpoints
//	publish     send facts from JSON files over NATS as a service would
//	simulate    publish a realistic programme over NATS
//	export      read models and the public notice as CSV (masked)
//	replay      rebuild a projection, optionally as of a moment
//	rules       the rule set (ledgerd --rule-set's file form) and notice windows under it
//
// Every flag can also be set by an environment variable: LEDGER_ plus the
// flag name in upper case with '-' as '_' (--store and LEDGER_STORE); a flag
// wins over the environment. The person-key secret is LEDGER_PERSON_KEY (or
// --key-file) and is never printed.
package ledgerctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// ExitError ends the program with Code after printing Msg (if any). Code 1
// is a failed check (a broken log, a bad proof), 2 a usage or configuration
// error, 3 a log that holds together but that no checkpoint anchored
// (verify's UNANCHORED).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

func usageErrorf(format string, args ...any) error {
	return &ExitError{Code: 2, Msg: fmt.Sprintf(format, args...)}
}

func failf(format string, args ...any) error {
	return &ExitError{Code: 1, Msg: fmt.Sprintf(format, args...)}
}

// env is what every command gets.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"verify":     {"walk a store file: hash links, the Merkle tree, checkpoints and the stream index; exit 1 on any break, 3 when no checkpoint anchored the walk", cmdVerify},
		"audit":      {"the timeline of a trainee, institution, entitlement, payment or stream", cmdAudit},
		"checkpoint": {"fetch, show and check signed checkpoints", cmdCheckpoint},
		"prove":      {"check an inclusion or consistency proof offline, with only the verifier key", cmdProve},
		"keygen":     {"make the Ed25519 key pair that signs checkpoints", cmdKeygen},
		"publish":    {"send facts from JSON files over NATS as an internal service would", cmdPublish},
		"simulate":   {"publish a realistic, deterministic programme over NATS", cmdSimulate},
		"export":     {"read models and the public notice as CSV (masked), from a store file or a running ledgerd", cmdExport},
		"redecide":   {"decide every fact of a store file again and compare with the decisions recorded; exit 1 on any difference", cmdRedecide},
		"replay":     {"rebuild a projection, optionally as of a time or position, into a file or stdout", cmdReplay},
		"migrate":    {"copy an embedded store's history into EventStoreDB, checking every hash link and every read model", cmdMigrate},
		"rules":      {"print the built-in rule set (or check a file) in the form ledgerd --rule-set reads; the notice window of an approval date", cmdRules},
	}
}

// Run runs ledgerctl with args (without the program name).
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				if err := c.run(ctx, e, []string{"-h"}); !errors.Is(err, flag.ErrHelp) && err != nil {
					return err
				}
				return nil
			}
		}
		usage(stderr)
		if len(args) == 0 {
			return &ExitError{Code: 2}
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return usageErrorf("unknown command %q", args[0])
	}
	err := c.run(ctx, e, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ledgerctl COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nledgerctl help COMMAND shows a command's flags. Every flag may also be set as LEDGER_<FLAG> in the environment.")
}

// flags is a command's flag set with environment defaults.
type flags struct {
	*flag.FlagSet
	e *env
}

func newFlags(e *env, name, synopsis string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: ledgerctl %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return &flags{fs, e}
}

func (f *flags) envOr(name, def string) string {
	if v := f.e.getenv("LEDGER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
		return v
	}
	return def
}

func (f *flags) str(name, def, usage string) *string {
	return f.String(name, f.envOr(name, def), usage)
}

func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &ExitError{Code: 2, Msg: err.Error()}
	}
	return nil
}

// noArgs fails if positional arguments remain.
func (f *flags) noArgs() error {
	if f.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q (see ledgerctl help %s)", f.Name(), f.Arg(0), f.Name())
	}
	return nil
}

// readSecretFile reads a key file, without its trailing newline.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageErrorf("cannot read %s: %v", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
