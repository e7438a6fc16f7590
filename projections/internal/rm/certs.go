package rm

import (
	"bytes"
	"sort"

	"github.com/cqhrss/subsidyledger/events/snap"
)

// Certs is what a read model keeps, in its record of a person and a
// qualification, of the certificates issued to them, so that it counts
// certifications, not certificate documents: the rules let an evaluation
// institution issue a corrected certificate on an assessment while the
// first is still in force (rules.World.reissued; the rules deny its
// subsidy), and that is still one certification of one person in one
// qualification.
//
// A certificate is in force until it is revoked; an assessment is
// certified while one of its certificates is in force. CertBook.Issue
// reports whether a certificate begins a certification (no other
// certificate of its assessment is in force) and CertBook.Revoke whether a
// revocation ends one (it leaves none of the assessment's in force), with
// where the certification it ends was counted (a C, the model's choice):
// the certificates of a certification all carry the C of the one that
// began it.
//
// The first certificate is kept here, in 12 bytes and a C, without its id:
// a revocation that names none of the later ones names it (the rules
// accept a revocation only of a certificate of the person and
// qualification it names). The later ones, few (a corrected certificate,
// a re-sit's after a revocation), are in the model's CertBook.
type Certs[C any] struct {
	assessment Ref // the first certificate's, in the book's arena
	at         C
	state      uint8 // certIssued, certRevoked (the first), certMore
}

const (
	certIssued  uint8 = 1 << iota // a first certificate is recorded
	certRevoked                   // and revoked
	certMore                      // the book has later ones
)

// CertBook is a model's book of certificates: the arena of the
// assessments and ids its Certs and later certificates refer to, and the
// later certificates of each person and qualification, in the order
// issued. The zero value is empty and ready to use. Not safe for
// concurrent writers.
type CertBook[C any] struct {
	arena Arena
	later map[pqKey][]laterCert[C]
}

type pqKey struct {
	k PersonKey
	q Q
}

type laterCert[C any] struct {
	id, assessment Ref
	at             C
	revoked        bool
}

// same reports whether r and s address the same string.
func (a *Arena) same(r, s Ref) bool {
	return r == s || bytes.Equal(a.bytes(r), a.bytes(s))
}

// bytes returns the bytes r addresses (nil out of range).
func (a *Arena) bytes(r Ref) []byte {
	if r.n == 0 {
		return nil
	}
	c, o := int(r.off>>chunkBits), int(r.off&(1<<chunkBits-1))
	if c >= len(a.chunks) || o+int(r.n) > len(a.chunks[c]) {
		return nil
	}
	return a.chunks[c][o : o+int(r.n)]
}

// Issue records certificate id, issued on assessment for person k and
// qualification q, whose Certs c is. It reports whether the certificate
// begins a certification, to be counted at at; if it does not (another
// certificate of the assessment is in force), it belongs to that one's
// certification and carries its C.
func (b *CertBook[C]) Issue(k PersonKey, q Q, c *Certs[C], id, assessment string, at C) bool {
	if c.state&certIssued == 0 {
		c.assessment, c.at, c.state = b.arena.Put(assessment), at, certIssued
		return true
	}
	key := pqKey{k, q}
	later := b.later[key]
	rec := laterCert[C]{id: b.arena.Put(id), at: at}
	begins := true
	if c.state&certRevoked == 0 && b.arena.Equal(c.assessment, assessment) {
		rec.assessment, rec.at, begins = c.assessment, c.at, false
	} else {
		for i := range later {
			if l := &later[i]; !l.revoked && b.arena.Equal(l.assessment, assessment) {
				rec.assessment, rec.at, begins = l.assessment, l.at, false
				break
			}
		}
	}
	if begins {
		rec.assessment = b.arena.Put(assessment)
	}
	if b.later == nil {
		b.later = map[pqKey][]laterCert[C]{}
	}
	b.later[key] = append(later, rec)
	c.state |= certMore
	return begins
}

// Revoke records the revocation of certificate id of person k and
// qualification q, whose Certs c is. It reports whether the revocation
// ends a certification (it leaves no certificate of the assessment in
// force), and if so the C it was counted at. A certificate revoked again,
// or a revocation of none recorded, ends nothing.
func (b *CertBook[C]) Revoke(k PersonKey, q Q, c *Certs[C], id string) (C, bool) {
	var zero C
	if c.state&certIssued == 0 {
		return zero, false
	}
	var later []laterCert[C]
	if c.state&certMore != 0 {
		later = b.later[pqKey{k, q}]
	}
	// The revoked certificate: a later one with the id, else the first.
	i := len(later) - 1
	for i >= 0 && !b.arena.Equal(later[i].id, id) {
		i--
	}
	var assessment Ref
	var at C
	if i < 0 {
		if c.state&certRevoked != 0 {
			return zero, false
		}
		c.state |= certRevoked
		assessment, at = c.assessment, c.at
	} else {
		if later[i].revoked {
			return zero, false
		}
		later[i].revoked = true
		assessment, at = later[i].assessment, later[i].at
	}
	if i >= 0 && c.state&certRevoked == 0 && b.arena.same(c.assessment, assessment) {
		return zero, false // the first stands
	}
	for j := range later {
		if j != i && !later[j].revoked && b.arena.same(later[j].assessment, assessment) {
			return zero, false // another stands
		}
	}
	return at, true
}

// Write writes c, its C with at.
func (c *Certs[C]) Write(w *snap.Writer, at func(*snap.Writer, *C)) {
	w.Uvarint(uint64(c.state))
	if c.state&certIssued != 0 {
		WriteRef(w, c.assessment)
		at(w, &c.at)
	}
}

// Read reads Certs written by Write, of book b (read before them).
func (c *Certs[C]) Read(r *snap.Reader, b *CertBook[C], at func(*snap.Reader, *C)) {
	*c = Certs[C]{}
	s := r.Uvarint()
	if s >= 1<<3 || s != 0 && s&uint64(certIssued) == 0 {
		r.Fail("certificates state %d", s)
		return
	}
	c.state = uint8(s)
	if c.state&certIssued != 0 {
		c.assessment = ReadRef(r)
		at(r, &c.at)
		if !b.arena.Valid(c.assessment) {
			r.Fail("certificate assessment out of the arena")
		}
	}
}

// Write writes the book, each C with at: the arena, then the later
// certificates of each person and qualification, in key order. A model
// writes it before the Certs that refer to it.
func (b *CertBook[C]) Write(w *snap.Writer, at func(*snap.Writer, *C)) {
	b.arena.Write(w)
	keys := make([]pqKey, 0, len(b.later))
	for k := range b.later {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c := bytes.Compare(keys[i].k[:], keys[j].k[:]); c != 0 {
			return c < 0
		}
		return keys[i].q < keys[j].q
	})
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.Fixed(k.k[:])
		w.Uvarint(uint64(k.q))
		l := b.later[k]
		w.Uvarint(uint64(len(l)))
		for i := range l {
			WriteRef(w, l[i].id)
			WriteRef(w, l[i].assessment)
			at(w, &l[i].at)
			w.Bool(l[i].revoked)
		}
	}
}

// Read replaces the book with one written by Write.
func (b *CertBook[C]) Read(r *snap.Reader, at func(*snap.Reader, *C)) {
	*b = CertBook[C]{}
	b.arena.Read(r)
	n := r.Len(1 << 30)
	if n > 0 {
		b.later = make(map[pqKey][]laterCert[C], n)
	}
	for range n {
		var k pqKey
		r.Fixed(k.k[:])
		q := r.Uvarint()
		if q > 0xff {
			r.Fail("qualification %d", q)
		}
		k.q = Q(q)
		l := make([]laterCert[C], r.Len(1<<16))
		for i := range l {
			l[i].id, l[i].assessment = ReadRef(r), ReadRef(r)
			at(r, &l[i].at)
			l[i].revoked = r.Bool()
			if !b.arena.Valid(l[i].id) || !b.arena.Valid(l[i].assessment) {
				r.Fail("certificate %d of %d", i, len(l))
			}
		}
		if r.Err() != nil {
			return
		}
		b.later[k] = l
	}
}
