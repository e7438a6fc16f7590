package rm

import "github.com/cqhrss/subsidyledger/events/snap"

// KeyIndex maps person keys to the indexes of a model's records of people,
// which hold the keys: the index keeps 8 bytes a person (a tag of the
// key's hash and the record's index), not the key, and confirms a match
// by reading the key from the record (keyAt). The zero value is empty and
// ready to use.
//
// A model's snapshot holds the index as it is (Write), and its restore
// reads it back (Read) after the records.
type KeyIndex struct{ x tagIndex }

// Get returns the index of k; keyAt returns the key of the record at an
// index.
func (x *KeyIndex) Get(k PersonKey, keyAt func(int32) *PersonKey) (int32, bool) {
	i := x.x.lookup(keyHash(&k, 0), func(i int32) bool { return *keyAt(i) == k })
	return i, i >= 0
}

// Put records that k is at index i. k must not be in the index (Get
// first).
func (x *KeyIndex) Put(k PersonKey, i int32) { x.x.insert(keyHash(&k, 0), i) }

// Len returns the number of keys.
func (x *KeyIndex) Len() int { return x.x.n }

// Write writes the index to a snapshot.
func (x *KeyIndex) Write(w *snap.Writer) { x.x.write(w) }

// Read replaces the index with the one Write wrote, for records records;
// an index that does not fit them fails r.
func (x *KeyIndex) Read(r *snap.Reader, records int) { x.x.read(r, records) }
