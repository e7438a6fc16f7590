package projections

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"github.com/cqhrss/subsidyledger/events"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// blob is a Snapshotter of raw bytes: nothing in its format can notice
// damage, so only the checkpoint's checksum can.
type blob struct{ data []byte }

func (b *blob) Name() string    { return "blob" }
func (b *blob) Version() uint32 { return 1 }
func (b *blob) Snapshot(w io.Writer) error {
	_, err := w.Write(b.data)
	return err
}
func (b *blob) Restore(r io.Reader) (err error) {
	b.data, err = io.ReadAll(r)
	return err
}

func openCheckpoints(t *testing.T) *Checkpoints {
	t.Helper()
	c, err := OpenCheckpoints(filepath.Join(t.TempDir(), "cp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// saved saves data as the blob's snapshot and checks that it comes back.
func saved(t *testing.T, c *Checkpoints, data []byte) Checkpoint {
	t.Helper()
	id := events.DeriveID("checkpoint test", "7")
	cp, err := c.Save(&blob{data}, 7, time.Now(), id)
	if err != nil {
		t.Fatal(err)
	}
	if loaded, ok, err := c.Load(cp.Name); err != nil || !ok || loaded.EventID != id || loaded.Position != 7 {
		t.Fatalf("Load after Save = %+v, %v, %v; want position 7 and event %s", loaded, ok, err, id)
	}
	got := &blob{}
	if err := c.Restore(got, cp); err != nil || !bytes.Equal(got.data, data) {
		t.Fatalf("Restore after Save = %v, %d bytes; want the %d bytes saved", err, len(got.data), len(data))
	}
	return cp
}

// mustBeDamaged restores cp after damage and wants it refused.
func mustBeDamaged(t *testing.T, c *Checkpoints, cp Checkpoint, what, kind string) {
	t.Helper()
	err := c.Restore(&blob{}, cp)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), kind) {
		t.Fatalf("Restore with %s = %v; want a %s mismatch reported as damage", what, err, kind)
	}
}

// Every single flipped bit, a byte cut off and a byte added are found.
func TestCheckpointsFindADamagedFile(t *testing.T) {
	c := openCheckpoints(t)
	data := randomBytes(4096)
	cp := saved(t, c, data)
	loaded, ok, err := c.Load("blob")
	if err != nil || !ok || loaded.CRC32C != cp.CRC32C || loaded.Size != 4096 || loaded.SHA256 != [32]byte{} {
		t.Fatalf("Load = %+v, %v, %v; want the manifest saved (%08x, 4096 bytes, no SHA-256)", loaded, ok, err, cp.CRC32C)
	}
	path := filepath.Join(c.Dir(), cp.File)
	write := func(b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range data {
		d := bytes.Clone(data)
		d[i] ^= 1 << (i % 8)
		write(d)
		mustBeDamaged(t, c, cp, "a bit flipped in byte "+strconv.Itoa(i), "crc32c")
	}
	write(data[:len(data)-1])
	mustBeDamaged(t, c, cp, "the last byte cut off", "crc32c")
	write(append(bytes.Clone(data), 0))
	mustBeDamaged(t, c, cp, "a byte added", "crc32c")
	write(data)
	if err := c.Restore(&blob{}, cp); err != nil {
		t.Fatalf("Restore of the mended file = %v", err)
	}
}

// A manifest written before CRC-32C (format 1, with the file's SHA-256)
// still restores, checked with its SHA-256.
func TestCheckpointsReadTheFirstManifestFormat(t *testing.T) {
	c := openCheckpoints(t)
	data := randomBytes(1000)
	cp := saved(t, c, data)
	sum := sha256.Sum256(data)
	// The first format, as it was written: the SHA-256 where the CRC is now.
	b := binary.AppendUvarint(nil, 1)
	b = binary.AppendUvarint(b, uint64(cp.Version))
	b = binary.AppendUvarint(b, uint64(cp.Position))
	b = binary.AppendVarint(b, cp.Created.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(cp.File)))
	b = append(b, cp.File...)
	b = binary.AppendUvarint(b, uint64(cp.Size))
	b = append(b, sum[:]...)
	b = binary.AppendVarint(b, cp.Written.UnixNano())
	if err := c.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketManifests).Put([]byte("blob"), b) }); err != nil {
		t.Fatal(err)
	}
	old, ok, err := c.Load("blob")
	if err != nil || !ok || old.SHA256 != sum || old.CRC32C != 0 || old.File != cp.File || old.Size != cp.Size || old.Position != cp.Position {
		t.Fatalf("Load of a first-format manifest = %+v, %v, %v; want %+v with the SHA-256 %x", old, ok, err, cp, sum)
	}
	got := &blob{}
	if err := c.Restore(got, old); err != nil || !bytes.Equal(got.data, data) {
		t.Fatalf("Restore from a first-format manifest = %v", err)
	}
	d := bytes.Clone(data)
	d[500] ^= 0x10
	if err := os.WriteFile(filepath.Join(c.Dir(), cp.File), d, 0o600); err != nil {
		t.Fatal(err)
	}
	mustBeDamaged(t, c, old, "a bit flipped", "sha256")
}

// A manifest of an unknown format, or cut short, is reported damaged.
func TestCheckpointsRefuseAnUnknownManifest(t *testing.T) {
	id := events.DeriveID("manifest", "9")
	cp := Checkpoint{Name: "x", Version: 1, Position: 9, EventID: id, Created: time.Unix(1, 0), File: "x.snap", Size: 3, CRC32C: 0xdeadbeef, Written: time.Unix(2, 0)}
	good := encodeManifest(cp)
	if got, err := decodeManifest("x", good); err != nil || got != (Checkpoint{Name: "x", Version: 1, Position: 9, EventID: id, Created: time.Unix(1, 0).UTC(), File: "x.snap", Size: 3, CRC32C: 0xdeadbeef, Written: time.Unix(2, 0).UTC()}) {
		t.Fatalf("decodeManifest(encodeManifest(cp)) = %+v, %v", got, err)
	}
	for n := range len(good) {
		if _, err := decodeManifest("x", good[:n]); err == nil {
			t.Errorf("decodeManifest of the first %d of %d bytes succeeded", n, len(good))
		}
	}
	if _, err := decodeManifest("x", append([]byte{4}, good[1:]...)); err == nil {
		t.Error("decodeManifest of format 4 succeeded")
	}
	// Format 2 (no event id) still reads, with a zero id.
	two := append([]byte{2}, good[1:len(good)-len(id)]...)
	if got, err := decodeManifest("x", two); err != nil || got.EventID != (events.ID{}) || got.Position != 9 || got.CRC32C != 0xdeadbeef {
		t.Errorf("decodeManifest of format 2 = %+v, %v", got, err)
	}
}

// A damaged checkpoints.db (cut short, empty or not bbolt) is moved aside
// and the checkpoints start empty: they are rebuilt from the log. It used
// to stop ledgerd (a crash, for a file cut short).
func TestOpenCheckpointsMovesADamagedFileAside(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCheckpoints(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Save(&blob{[]byte("state")}, 7, time.Now(), events.ID{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	path := filepath.Join(dir, "checkpoints.db")
	if err := os.Truncate(path, 8<<10); err != nil {
		t.Fatal(err)
	}
	c, err = OpenCheckpoints(dir)
	if err != nil {
		t.Fatalf("OpenCheckpoints over a damaged checkpoints.db = %v; want it moved aside", err)
	}
	defer c.Close()
	if _, ok, err := c.Load("blob"); err != nil || ok {
		t.Errorf("Load after the move = %v, %v; want no checkpoint", ok, err)
	}
	if d := c.Damaged(); !strings.HasPrefix(d, path+".damaged-") {
		t.Errorf("Damaged() = %q; want %s.damaged-…", d, path)
	} else if fi, err := os.Stat(d); err != nil || fi.Size() != 8<<10 {
		t.Errorf("the damaged file moved aside: %v, %v", fi, err)
	}
}
