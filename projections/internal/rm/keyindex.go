package rm

// KeyIndex maps person keys to indexes (into a model's records of people):
// a PQMap without the qualification, so a lookup reads one slot holding
// the whole key. The zero value is empty and ready to use.
type KeyIndex struct{ m PQMap[int32] }

// Get returns the index of k.
func (x *KeyIndex) Get(k PersonKey) (int32, bool) {
	if p := x.m.Get(k, 0); p != nil {
		return *p, true
	}
	return 0, false
}

// Put records that k is at index i.
func (x *KeyIndex) Put(k PersonKey, i int32) { *x.m.Put(k, 0) = i }

// Len returns the number of keys.
func (x *KeyIndex) Len() int { return x.m.Len() }
