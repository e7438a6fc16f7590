package vault_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cqhrss/subsidyledger/services/vault"
)

const (
	pkA = "6baaf2c3cf3a29a4ac710aeeffadb8c04c2481b727a970349d0a73ca269751fb"
	pkB = "27b37021940f5dc04fc0d1b0f791c1f0bb736b7078115095a17a7b53e5855504"
)

var (
	recA = vault.Record{IDNumber: "11010519491231002X", Name: "张伟三", PayeeAccount: "6217000012345678901", SubmittedAt: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	recB = vault.Record{IDNumber: "500103200305120011", Name: "李娜", SubmittedAt: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
)

func key(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, vault.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func open(t *testing.T, path string, kek []byte) *vault.Vault {
	t.Helper()
	v, err := vault.Open(path, kek)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func TestPutGetErase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personal.db")
	kek := key(t)
	v := open(t, path, kek)
	if _, err := v.Get(pkA); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v; want ErrNotFound", err)
	}
	for pk, r := range map[string]vault.Record{pkA: recA, pkB: recB} {
		if err := v.Put(pk, r); err != nil {
			t.Fatalf("Put(%s) = %v", pk, err)
		}
	}
	// Durable: a reopened vault (same key) has both.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = open(t, path, kek)
	if got, err := v.Get(pkA); err != nil || got != recA {
		t.Fatalf("Get(A) after reopen = %+v, %v; want %+v", got, err, recA)
	}
	if err := v.Erase(pkA); err != nil {
		t.Fatalf("Erase(A) = %v", err)
	}
	if _, err := v.Get(pkA); !errors.Is(err, vault.ErrErased) {
		t.Fatalf("Get(A) after Erase = %v; want ErrErased", err)
	}
	if err := v.Erase(pkA); err != nil {
		t.Errorf("Erase(A) twice = %v; want nil", err)
	}
	if err := v.Erase(strings.Repeat("0", 64)); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("Erase(unknown) = %v; want ErrNotFound", err)
	}
	if got, err := v.Get(pkB); err != nil || got != recB {
		t.Fatalf("Get(B) after erasing A = %+v, %v; want %+v", got, err, recB)
	}
	if s, err := v.Stats(); err != nil || s != (vault.Stats{Records: 1, Erased: 1}) {
		t.Errorf("Stats = %+v, %v; want 1 record, 1 erased", s, err)
	}
	// The erasure is durable.
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = open(t, path, kek)
	if _, err := v.Get(pkA); !errors.Is(err, vault.ErrErased) {
		t.Fatalf("Get(A) after Erase and reopen = %v; want ErrErased", err)
	}
	// A new submission after erasure is new data under a new data key.
	if err := v.Put(pkA, recB); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Get(pkA); err != nil || got != recB {
		t.Errorf("Get(A) after a new Put = %+v, %v; want %+v", got, err, recB)
	}
	for _, bad := range []string{"", "ABC", strings.Repeat("G", 64), strings.ToUpper(pkA)} {
		if err := v.Put(bad, recA); !errors.Is(err, vault.ErrInvalidPersonKey) {
			t.Errorf("Put(%q) = %v; want ErrInvalidPersonKey", bad, err)
		}
	}
}

// TestDamagedFile: a vault file emptied or cut short is refused, never
// opened as a new, empty vault (the personal data is not in the log: it
// would be gone without a word) nor a crash.
func TestDamagedFile(t *testing.T) {
	for _, size := range []int64{0, 8 << 10} {
		path := filepath.Join(t.TempDir(), "personal.db")
		kek := key(t)
		v := open(t, path, kek)
		if err := v.Put(pkA, recA); err != nil {
			t.Fatal(err)
		}
		v.Close()
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		v2, err := vault.Open(path, kek)
		if err == nil {
			v2.Close()
			t.Fatalf("Open of the vault cut to %d bytes succeeded; want it refused", size)
		}
		if !strings.Contains(err.Error(), "restore it from a backup") {
			t.Errorf("Open of the vault cut to %d bytes = %v; want it to say to restore a backup", size, err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personal.db")
	v, err := vault.Open(path, key(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Put(pkA, recA); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if _, err := vault.Open(path, key(t)); !errors.Is(err, vault.ErrWrongKey) {
		t.Fatalf("Open(other key) = %v; want ErrWrongKey", err)
	}
	if _, err := vault.Open(path, make([]byte, 16)); !errors.Is(err, vault.ErrBadKey) {
		t.Fatalf("Open(16-byte key) = %v; want ErrBadKey", err)
	}
}

// raw reads and rewrites values of the vault file directly, as someone
// holding the file (not the key) could.
func raw(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedCiphertext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personal.db")
	kek := key(t)
	v, err := vault.Open(path, kek)
	if err != nil {
		t.Fatal(err)
	}
	for pk, r := range map[string]vault.Record{pkA: recA, pkB: recB} {
		if err := v.Put(pk, r); err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	raw(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("records"))
		c := bytes.Clone(b.Get([]byte(pkA)))
		c[len(c)/2] ^= 0x01
		if err := b.Put([]byte(pkA), c); err != nil {
			return err
		}
		// B's record moved under another person key does not decrypt
		// either (the additional data names the key).
		return b.Put([]byte(pkB), bytes.Clone(b.Get([]byte(pkA))))
	})
	v = open(t, path, kek)
	for _, pk := range []string{pkA, pkB} {
		if got, err := v.Get(pk); !errors.Is(err, vault.ErrCorrupt) {
			t.Errorf("Get(%s) of a tampered record = %+v, %v; want ErrCorrupt", pk[:8], got, err)
		}
	}
}

func TestErasedStaysUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personal.db")
	kek := key(t)
	v, err := vault.Open(path, kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Put(pkA, recA); err != nil {
		t.Fatal(err)
	}
	v.Close()
	// Keep a copy of the ciphertext and the wrapped data key, as a backup
	// would.
	var ciphertext, wrapped []byte
	raw(t, path, func(tx *bolt.Tx) error {
		ciphertext = bytes.Clone(tx.Bucket([]byte("records")).Get([]byte(pkA)))
		wrapped = bytes.Clone(tx.Bucket([]byte("deks")).Get([]byte(pkA)))
		return nil
	})
	v = open(t, path, kek)
	if err := v.Erase(pkA); err != nil {
		t.Fatal(err)
	}
	v.Close()
	// Neither the wrapped key nor the ciphertext is anywhere in the file,
	// free pages included.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, wrapped) || bytes.Contains(b, ciphertext) {
		t.Fatal("the erased record's wrapped data key or ciphertext is still in the file")
	}
	// Restore the ciphertext: still unreadable, without its data key.
	raw(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("records")).Put([]byte(pkA), ciphertext)
	})
	v = open(t, path, kek)
	if got, err := v.Get(pkA); !errors.Is(err, vault.ErrErased) {
		t.Fatalf("Get of a restored ciphertext after Erase = %+v, %v; want ErrErased", got, err)
	}
}

func TestNoPlaintextInFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personal.db")
	v := open(t, path, key(t))
	for pk, r := range map[string]vault.Record{pkA: recA, pkB: recB} {
		if err := v.Put(pk, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Erase(pkB); err != nil {
		t.Fatal(err)
	}
	if err := v.Put(pkA, recA); err != nil { // a rewrite leaves an old page behind
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []vault.Record{recA, recB} {
		for _, s := range []string{r.IDNumber, r.IDNumber[:10], r.Name, r.PayeeAccount} {
			if s != "" && bytes.Contains(b, []byte(s)) {
				t.Errorf("the vault file holds %q in plain text", s)
			}
		}
	}
}

func TestParseKey(t *testing.T) {
	k := key(t)
	for _, s := range []string{hex.EncodeToString(k), " " + hex.EncodeToString(k) + "\n", base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
		if got, err := vault.ParseKey(s); err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v; want %x", s, got, err, k)
		}
	}
	for _, s := range []string{"", "short", hex.EncodeToString(k[:16]), base64.StdEncoding.EncodeToString(k[:31]), strings.Repeat("z", 64)} {
		if _, err := vault.ParseKey(s); !errors.Is(err, vault.ErrBadKey) {
			t.Errorf("ParseKey(%q) = %v; want ErrBadKey", s, err)
		}
	}
	if k, err := vault.ParseKey(vault.NewKey()); err != nil || len(k) != vault.KeySize {
		t.Errorf("ParseKey(NewKey()) = %x, %v", k, err)
	}
}
