// Package vault is the encrypted store of the personal data the ledger must
// keep in plain form somewhere (DOMAIN.md §3, PIPL art. 51): a trainee's
// resident ID number, name and payee account, by person key. It is a bbolt
// file of its own, never part of the event log.
//
// Envelope encryption with AES-256-GCM: every person key has its own random
// data key (DEK), stored wrapped (encrypted) by the master key (KEK) that
// comes from configuration; the record is encrypted with the DEK. The
// additional data binds each ciphertext to its person key and format
// version, so a ciphertext moved to another key does not decrypt.
//
// Crypto-shredding: Erase deletes the wrapped DEK and the ciphertext, keeps
// a tombstone (the person key and when), and then compacts the file into a
// fresh one, so that the deleted bytes do not linger in bbolt's free pages.
// Without its DEK the record cannot be decrypted even if its ciphertext is
// restored from a backup. The event log, which carries only person keys, is
// never rewritten.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	eventsbolt "github.com/cqhrss/subsidyledger/events/bolt"
	"github.com/cqhrss/subsidyledger/events/person"
)

// KeySize is the size of the master key and of each data key (AES-256).
const KeySize = 32

// Errors. Every error the vault returns is one of these or wraps one.
var (
	// ErrNotFound: no record for the person key, and none was erased.
	ErrNotFound = errors.New("vault: no personal data for this person key")
	// ErrErased: the record was crypto-shredded by Erase.
	ErrErased = errors.New("vault: personal data erased")
	// ErrWrongKey: the master key is not the one the file was made with.
	ErrWrongKey = errors.New("vault: wrong master key")
	// ErrCorrupt: a stored ciphertext does not authenticate (tampered or
	// damaged); nothing is returned.
	ErrCorrupt = errors.New("vault: stored data does not authenticate")
	// ErrBadKey: the master key is not 32 bytes (hex or base64).
	ErrBadKey = errors.New("vault: master key must be 32 bytes, hex or base64")
	// ErrInvalidPersonKey: not a person key (64 lower-case hex characters).
	ErrInvalidPersonKey = errors.New("vault: invalid person key")
	// ErrClosed: the vault was closed.
	ErrClosed = errors.New("vault: closed")
)

// Record is one person's personal data.
type Record struct {
	IDNumber     string    `json:"id_number"`
	Name         string    `json:"name"`
	PayeeAccount string    `json:"payee_account,omitempty"`
	SubmittedAt  time.Time `json:"submitted_at"`
}

// ParseKey decodes a master key given as 64 hex characters or as base64 of
// 32 bytes (surrounding white space ignored).
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, ErrBadKey
}

// NewKey returns a random master key, hex-encoded (for a key file).
func NewKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

var (
	bucketMeta    = []byte("meta")
	bucketDEKs    = []byte("deks")
	bucketRecords = []byte("records")
	bucketErased  = []byte("erased")
	keyCheck      = []byte("kek-check")
)

// Format version of wrapped keys and records (first byte; also in the AAD).
const version byte = 1

// Vault is the encrypted personal-data store. Its methods are safe for
// concurrent use.
type Vault struct {
	path string
	kek  cipher.AEAD

	mu sync.RWMutex // guards db; Erase holds it exclusively to compact
	db *bolt.DB
}

// Open opens (or creates) the vault file at path with the master key kek
// (KeySize bytes). It returns ErrBadKey for a key of the wrong size and
// ErrWrongKey when the file was made with another key.
func Open(path string, kek []byte) (*Vault, error) {
	if len(kek) != KeySize {
		return nil, ErrBadKey
	}
	a, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	v := &Vault{path: path, kek: a}
	if err := v.open(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Vault) open() error {
	db, err := eventsbolt.OpenDB(v.path, &bolt.Options{Timeout: 5 * time.Second})
	if errors.Is(err, eventsbolt.ErrDamaged) {
		// Never start afresh over it: the personal data cannot be rebuilt
		// from the log. Restore it from a backup.
		return fmt.Errorf("vault: %s cannot be opened as the vault: %w; restore it from a backup (the personal data is not in the log)", v.path, err)
	}
	if err != nil {
		return fmt.Errorf("vault: open %s: %w", v.path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketDEKs, bucketRecords, bucketErased} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if c := meta.Get(keyCheck); c != nil {
			if _, err := open(v.kek, c, aad("kek-check", "")); err != nil {
				return ErrWrongKey
			}
			return nil
		}
		return meta.Put(keyCheck, seal(v.kek, []byte("subsidyledger vault"), aad("kek-check", "")))
	})
	if err != nil {
		_ = db.Close()
		if errors.Is(err, ErrWrongKey) {
			return err
		}
		return fmt.Errorf("vault: %s: %w", v.path, err)
	}
	v.db = db
	return nil
}

// Close closes the file.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.db == nil {
		return nil
	}
	err := v.db.Close()
	v.db = nil
	return err
}

// Put stores (or replaces) the record of a person key, durably (the bbolt
// commit is fsync'd before Put returns). A person key erased before gets a
// new data key: a later submission by the enrolment system is new data.
func (v *Vault) Put(personKey string, r Record) error {
	if !person.ValidKey(personKey) {
		return ErrInvalidPersonKey
	}
	plain, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("vault: encode: %w", err)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.db == nil {
		return ErrClosed
	}
	return v.db.Update(func(tx *bolt.Tx) error {
		pk := []byte(personKey)
		deks := tx.Bucket(bucketDEKs)
		var dek []byte
		if w := deks.Get(pk); w != nil {
			if dek, err = open(v.kek, w, aad("dek", personKey)); err != nil {
				return ErrCorrupt
			}
		} else {
			dek = make([]byte, KeySize)
			_, _ = rand.Read(dek)
			if err := deks.Put(pk, seal(v.kek, dek, aad("dek", personKey))); err != nil {
				return err
			}
		}
		a, err := newAEAD(dek)
		clear(dek)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketErased).Delete(pk); err != nil {
			return err
		}
		return tx.Bucket(bucketRecords).Put(pk, seal(a, plain, aad("record", personKey)))
	})
}

// Get returns the record of a person key: ErrNotFound when there is none,
// ErrErased when it was erased, ErrCorrupt when a stored ciphertext does
// not authenticate.
func (v *Vault) Get(personKey string) (Record, error) {
	var r Record
	if !person.ValidKey(personKey) {
		return r, ErrInvalidPersonKey
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.db == nil {
		return r, ErrClosed
	}
	err := v.db.View(func(tx *bolt.Tx) error {
		pk := []byte(personKey)
		w := tx.Bucket(bucketDEKs).Get(pk)
		if w == nil {
			if tx.Bucket(bucketErased).Get(pk) != nil {
				return ErrErased
			}
			return ErrNotFound
		}
		dek, err := open(v.kek, w, aad("dek", personKey))
		if err != nil {
			return ErrCorrupt
		}
		a, err := newAEAD(dek)
		clear(dek)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketRecords).Get(pk)
		if c == nil {
			return ErrNotFound
		}
		plain, err := open(a, c, aad("record", personKey))
		if err != nil {
			return ErrCorrupt
		}
		if err := json.Unmarshal(plain, &r); err != nil {
			return ErrCorrupt
		}
		return nil
	})
	return r, err
}

// Erase crypto-shreds the record of a person key: its wrapped data key and
// ciphertext are deleted and a tombstone kept (Get then returns ErrErased),
// durably, and the file is compacted so that the deleted bytes are not left
// in free pages. It returns ErrNotFound when there was nothing to erase
// (erasing twice is not an error).
func (v *Vault) Erase(personKey string) error {
	if !person.ValidKey(personKey) {
		return ErrInvalidPersonKey
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.db == nil {
		return ErrClosed
	}
	err := v.db.Update(func(tx *bolt.Tx) error {
		pk := []byte(personKey)
		if tx.Bucket(bucketDEKs).Get(pk) == nil && tx.Bucket(bucketRecords).Get(pk) == nil {
			if tx.Bucket(bucketErased).Get(pk) != nil {
				return nil
			}
			return ErrNotFound
		}
		if err := tx.Bucket(bucketDEKs).Delete(pk); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRecords).Delete(pk); err != nil {
			return err
		}
		at, _ := time.Now().UTC().MarshalText()
		return tx.Bucket(bucketErased).Put(pk, at)
	})
	if err != nil {
		return err
	}
	return v.compact()
}

// compact copies the live data into a fresh file and renames it over the
// old one, so that deleted values do not survive in free pages. v.mu is held.
func (v *Vault) compact() error {
	tmp := v.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("vault: compact: %w", err)
	}
	if err := bolt.Compact(dst, v.db, 1<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("vault: compact: %w", err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		return fmt.Errorf("vault: compact: %w", err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("vault: compact: %w", err)
	}
	if err := v.db.Close(); err != nil {
		return fmt.Errorf("vault: compact: %w", err)
	}
	v.db = nil
	if err := os.Rename(tmp, v.path); err != nil {
		_ = v.open()
		return fmt.Errorf("vault: compact: %w", err)
	}
	if d, err := os.Open(filepath.Dir(v.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return v.open()
}

// Stats counts the records held and erased.
type Stats struct{ Records, Erased int }

// Stats returns the counts.
func (v *Vault) Stats() (Stats, error) {
	var s Stats
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.db == nil {
		return s, ErrClosed
	}
	err := v.db.View(func(tx *bolt.Tx) error {
		s.Records = tx.Bucket(bucketRecords).Stats().KeyN
		s.Erased = tx.Bucket(bucketErased).Stats().KeyN
		return nil
	})
	return s, err
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return cipher.NewGCM(b)
}

// aad binds a ciphertext to its kind, format version and person key.
func aad(kind, personKey string) []byte {
	return []byte(fmt.Sprintf("subsidyledger/vault/%s/v%d/%s", kind, version, personKey))
}

// seal returns version || nonce || ciphertext.
func seal(a cipher.AEAD, plain, ad []byte) []byte {
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plain)+a.Overhead())
	out[0] = version
	_, _ = rand.Read(out[1:])
	return a.Seal(out, out[1:], plain, ad)
}

func open(a cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	n := a.NonceSize()
	if len(sealed) < 1+n+a.Overhead() || sealed[0] != version {
		return nil, ErrCorrupt
	}
	return a.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
}
