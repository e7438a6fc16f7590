package projections

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/bolt"
)

// Checkpoints keeps the latest snapshot of each projection (or other
// Snapshotter, such as the intake's state) and the position it was taken
// at, in a directory of its own:
//
//	checkpoints.db             bbolt: one manifest per projection
//	<name>-<position>.snap     the snapshot files the manifests name
//
// A snapshot is written to a temporary file, synced and renamed to its
// final, never-reused name; then one bbolt transaction records the
// manifest (version, position, that event's id and commit time, file,
// size, CRC-32C). That transaction is the single switch point: before it the old manifest and
// file are in force, after it the new ones, so state and checkpoint always
// change together. Files no manifest names (left by a crash between the
// rename and the commit) are removed at open; a replaced file is removed
// once the new manifest is committed. Keeping the state in a file rather than in bbolt values streams a
// large snapshot to disk without holding it in memory.
//
// The checksum is CRC-32C (Castagnoli), which the CPU computes: it finds a
// file damaged on disk or cut short, which is what it is for (whoever can
// rewrite the file can rewrite its manifest beside it, so a cryptographic
// hash would protect nothing more). Manifests written before it (format 1)
// carry a SHA-256 of the file instead, and are still checked with that.
// SHA-256 took a second of CPU to check 1.2 GB at every restart.
type Checkpoints struct {
	dir     string
	db      *bbolt.DB
	damaged string // where a damaged checkpoints.db was moved at open
}

var bucketManifests = []byte("manifests")

// Checkpoint is a manifest: where a projection's latest snapshot is and
// which position it reflects.
type Checkpoint struct {
	Name    string
	Version uint32
	// Position is the position of the last event the snapshot reflects,
	// and EventID that event's id (zero in manifests before format 3, and
	// at Start): a restore checks that the log holds it there, so that a
	// snapshot of another log, or of a longer one restored from an older
	// backup, is never taken for this log's.
	Position events.Position
	EventID  events.ID
	// Created is that event's commit time.
	Created time.Time
	File    string
	Size    int64
	// CRC32C is the file's CRC-32C (Castagnoli) checksum.
	CRC32C uint32
	// SHA256 is the file's SHA-256 in a manifest of the first format,
	// which had no CRC32C; zero in manifests written since.
	SHA256  [32]byte
	Written time.Time
}

// castagnoli is the CRC-32C table (hardware-assisted where the CPU has it).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Manifest formats: 1 carried a SHA-256 of the file, 2 its CRC-32C, 3
// also the id of the event at Position.
const (
	manifestSHA256  = 1
	manifestCRC32C  = 2
	manifestEventID = 3
)

// OpenCheckpoints opens (creating if need be) the checkpoint directory dir.
// Only one process may hold it. Errors: the directory or bbolt file cannot
// be created or opened (another process holds it: after one second).
func OpenCheckpoints(dir string) (*Checkpoints, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("projections: checkpoint directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "checkpoints.db")
	var aside string
	db, err := bolt.OpenDB(path, &bbolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrDamaged) {
		// Only manifests of snapshots, which are rebuilt from the log:
		// move the file aside (for whoever looks into why) and start
		// without.
		aside = fmt.Sprintf("%s.damaged-%d", path, time.Now().UnixNano())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("projections: %w; moving it aside: %v", err, rerr)
		}
		db, err = bolt.OpenDB(path, &bbolt.Options{Timeout: time.Second})
	}
	if err != nil {
		return nil, fmt.Errorf("projections: opening %s (is another ledgerd using it?): %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketManifests)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("projections: initialising %s: %w", dir, err)
	}
	c := &Checkpoints{dir: dir, db: db, damaged: aside}
	c.removeOrphans()
	return c, nil
}

// Damaged returns where OpenCheckpoints moved a damaged checkpoints.db
// (every projection then rebuilds or folds from the start), or "".
func (c *Checkpoints) Damaged() string { return c.damaged }

// Close closes the bbolt file.
func (c *Checkpoints) Close() error { return c.db.Close() }

// Dir returns the checkpoint directory.
func (c *Checkpoints) Dir() string { return c.dir }

// encodeManifest encodes cp in the current format (format 1, with its
// SHA-256, is only read).
func encodeManifest(cp Checkpoint) []byte {
	b := make([]byte, 0, 128)
	b = binary.AppendUvarint(b, manifestEventID)
	b = binary.AppendUvarint(b, uint64(cp.Version))
	b = binary.AppendUvarint(b, uint64(cp.Position))
	b = binary.AppendVarint(b, cp.Created.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(cp.File)))
	b = append(b, cp.File...)
	b = binary.AppendUvarint(b, uint64(cp.Size))
	b = binary.BigEndian.AppendUint32(b, cp.CRC32C)
	b = binary.AppendVarint(b, cp.Written.UnixNano())
	b = append(b, cp.EventID[:]...)
	return b
}

func decodeManifest(name string, b []byte) (Checkpoint, error) {
	cp := Checkpoint{Name: name}
	bad := fmt.Errorf("projections: manifest of %q is damaged", name)
	u := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			panic(bad)
		}
		b = b[n:]
		return v
	}
	s := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			panic(bad)
		}
		b = b[n:]
		return v
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = bad
			}
		}()
		format := u()
		if format != manifestSHA256 && format != manifestCRC32C && format != manifestEventID {
			panic(bad)
		}
		cp.Version = uint32(u())
		cp.Position = events.Position(u())
		cp.Created = time.Unix(0, s()).UTC()
		n := u()
		if uint64(len(b)) < n {
			panic(bad)
		}
		cp.File, b = string(b[:n]), b[n:]
		cp.Size = int64(u())
		if format == manifestSHA256 {
			if len(b) < 32 {
				panic(bad)
			}
			copy(cp.SHA256[:], b[:32])
			b = b[32:]
		} else {
			if len(b) < 4 {
				panic(bad)
			}
			cp.CRC32C, b = binary.BigEndian.Uint32(b), b[4:]
		}
		cp.Written = time.Unix(0, s()).UTC()
		if format == manifestEventID {
			if len(b) < len(cp.EventID) {
				panic(bad)
			}
			copy(cp.EventID[:], b)
		}
	}()
	return cp, err
}

// Load returns the manifest of the named projection; ok is false when
// there is none.
func (c *Checkpoints) Load(name string) (cp Checkpoint, ok bool, err error) {
	err = c.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketManifests).Get([]byte(name))
		if v == nil {
			return nil
		}
		ok = true
		cp, err = decodeManifest(name, v)
		return err
	})
	return cp, ok, err
}

// Snapshotter is what Checkpoints keeps: a named, versioned state that
// writes a snapshot of itself and restores one. Every Projection is one;
// so is the intake's state (the rules' World).
type Snapshotter interface {
	Name() string
	Version() uint32
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

// Save writes p's snapshot, taken after the event id at pos (committed at
// created), and makes it the projection's checkpoint. The caller must not
// apply events to p during Save. Errors: writing or syncing the file,
// committing the manifest, or p.Snapshot's own.
func (c *Checkpoints) Save(p Snapshotter, pos events.Position, created time.Time, id events.ID) (Checkpoint, error) {
	name := p.Name()
	cp := Checkpoint{Name: name, Version: p.Version(), Position: pos, EventID: id, Created: created.UTC(), Written: time.Now().UTC()}
	cp.File = fmt.Sprintf("%s-v%d-%020d-%d.snap", name, cp.Version, uint64(pos), cp.Written.UnixNano())
	tmp, err := os.CreateTemp(c.dir, name+"-*.tmp")
	if err != nil {
		return cp, fmt.Errorf("projections: snapshot of %q: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	h := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if err := p.Snapshot(bw); err != nil {
		tmp.Close()
		return cp, fmt.Errorf("projections: snapshot of %q: %w", name, err)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return cp, fmt.Errorf("projections: writing the snapshot of %q: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return cp, fmt.Errorf("projections: syncing the snapshot of %q: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return cp, fmt.Errorf("projections: closing the snapshot of %q: %w", name, err)
	}
	cp.Size = cw.n
	cp.CRC32C = h.Sum32()
	if err := os.Rename(tmp.Name(), filepath.Join(c.dir, cp.File)); err != nil {
		return cp, fmt.Errorf("projections: snapshot of %q: %w", name, err)
	}
	syncDir(c.dir)
	var old string
	err = c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketManifests)
		if v := b.Get([]byte(name)); v != nil {
			if prev, err := decodeManifest(name, v); err == nil {
				old = prev.File
			}
		}
		return b.Put([]byte(name), encodeManifest(cp))
	})
	if err != nil {
		os.Remove(filepath.Join(c.dir, cp.File))
		return cp, fmt.Errorf("projections: recording the checkpoint of %q: %w", name, err)
	}
	if old != "" && old != cp.File {
		os.Remove(filepath.Join(c.dir, old))
	}
	return cp, nil
}

// Restore restores p (a fresh instance) from the checkpoint cp, checking
// the file's size and checksum (CRC-32C; SHA-256 for a manifest of the
// first format). The garbage collector is off meanwhile (see
// restoreBudget). Errors: the file is missing or damaged, or p.Restore
// fails; p must then be discarded.
func (c *Checkpoints) Restore(p Snapshotter, cp Checkpoint) error {
	f, err := os.Open(filepath.Join(c.dir, cp.File))
	if err != nil {
		return fmt.Errorf("projections: snapshot of %q: %w", cp.Name, err)
	}
	defer f.Close()
	defer pauseGC(cp.Size)()
	legacy := cp.SHA256 != [32]byte{}
	var h hash.Hash = crc32.New(castagnoli)
	if legacy {
		h = sha256.New()
	}
	hr := &hashReader{r: f, h: h}
	if err := p.Restore(hr); err != nil {
		return fmt.Errorf("projections: restoring %q from %s: %w", cp.Name, cp.File, err)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return fmt.Errorf("projections: reading %s: %w", cp.File, err)
	}
	got, want := h.Sum(nil), binary.BigEndian.AppendUint32(nil, cp.CRC32C)
	kind := "crc32c"
	if legacy {
		want, kind = cp.SHA256[:], "sha256"
	}
	if hr.n != cp.Size || !bytes.Equal(got, want) {
		return fmt.Errorf("projections: snapshot %s of %q is damaged (size %d, want %d; %s %x, want %x)",
			cp.File, cp.Name, hr.n, cp.Size, kind, got, want)
	}
	return nil
}

// Drop removes the checkpoint of the named projection (its next start
// rebuilds from Start).
func (c *Checkpoints) Drop(name string) error {
	var old string
	err := c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketManifests)
		if v := b.Get([]byte(name)); v != nil {
			if prev, err := decodeManifest(name, v); err == nil {
				old = prev.File
			}
		}
		return b.Delete([]byte(name))
	})
	if err == nil && old != "" {
		os.Remove(filepath.Join(c.dir, old))
	}
	return err
}

// removeOrphans deletes snapshot and temporary files no manifest names.
func (c *Checkpoints) removeOrphans() {
	keep := map[string]bool{}
	_ = c.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			if cp, err := decodeManifest(string(k), v); err == nil {
				keep[cp.File] = true
			}
			return nil
		})
	})
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if (strings.HasSuffix(n, ".snap") || strings.HasSuffix(n, ".tmp")) && !keep[n] {
			os.Remove(filepath.Join(c.dir, n))
		}
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}
