package bolt

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged is the error of OpenDB for a file it cannot open as bbolt
// because of its content: damaged, cut short, or empty.
var ErrDamaged = errors.New("damaged bbolt file")

// OpenDB opens a bbolt file of the ledger's other than the event store
// (the snapshots' manifests, the Merkle seals, the personal-data vault).
// A damaged file — a page whose offsets point outside it, a file cut
// short — makes bbolt panic, or fault on memory outside the mapped file,
// while it opens it; OpenDB returns that as an error wrapping ErrDamaged
// instead of crashing the process. An existing empty file is refused the
// same way: bbolt would initialise it as a new one, and whatever the file
// held (the vault's personal data cannot be rebuilt) would be gone without
// a word. Other errors (the lock held by another process, permissions)
// are bbolt's.
func OpenDB(path string, o *bbolt.Options) (db *bbolt.DB, err error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, fmt.Errorf("%s is empty (not a bbolt file, nor absent): %w", path, ErrDamaged)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%s: reading it failed: %v: %w", path, p, ErrDamaged)
		}
	}()
	db, err = bbolt.Open(path, 0o600, o)
	if err != nil && isInvalid(err) {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrDamaged)
	}
	return db, err
}

// isInvalid reports whether err is bbolt's refusal of a file's content
// (not a bbolt file, a bad version or checksum).
func isInvalid(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrChecksum)
}
