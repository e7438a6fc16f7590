package ledgerctl

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/merkle"
)

// storeFlag adds --store: the embedded store's data file (bolt:PATH or
// PATH), by default DATA-DIR/ledger.db as ledgerd keeps it.
func storeFlag(f *flags) *string {
	def := filepath.Join(f.envOr("data-dir", "data"), "ledger.db")
	return f.str("store", def, "the event store's data file (bolt:PATH or PATH; ledgerd must not be running on it)")
}

// openStore opens an existing store file read-only: it never creates or
// changes one (an auditor may verify a copy on read-only media), and
// several ledgerctl commands may read it at once.
func openStore(spec string) (*bolt.Store, error) {
	path := strings.TrimPrefix(spec, "bolt:")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, usageErrorf("no event store at %s (give --store PATH)", path)
	}
	s, err := bolt.Open(path, bolt.Options{LockTimeout: 2 * time.Second, InitialMmapSize: 1 << 26, ReadOnly: true})
	if err != nil {
		if events.CodeOf(err) == events.CodeUnavailable {
			return nil, usageErrorf("%v\n(ledgerctl reads a store file only while no ledgerd holds it: stop ledgerd, or work on a copy taken while it was stopped)", err)
		}
		return nil, failf("%v", err)
	}
	return s, nil
}

// verifierFlags adds --verifier-key and --verifier-key-file.
type verifierFlags struct{ key, file *string }

func addVerifierFlags(f *flags) verifierFlags {
	return verifierFlags{
		key:  f.str("verifier-key", "", "the log's checkpoint verifier key (NAME+HASH+KEY, as keygen writes it)"),
		file: f.str("verifier-key-file", "", "a file holding the verifier key"),
	}
}

// verifier returns the configured verifier, nil when none is configured.
func (v verifierFlags) verifier() (*merkle.Verifier, error) {
	text := *v.key
	if text == "" && *v.file != "" {
		var err error
		if text, err = readSecretFile(*v.file); err != nil {
			return nil, err
		}
	}
	if text == "" {
		return nil, nil
	}
	vr, err := merkle.NewVerifier(text)
	if err != nil {
		return nil, usageErrorf("verifier key: %v", err)
	}
	return vr, nil
}
