package rm

import (
	"bytes"
	"testing"

	"github.com/cqhrss/subsidyledger/events/snap"
)

// TestCerts: a certificate begins a certification only when none of its
// assessment's is in force, a revocation ends one only when it leaves none
// in force, at the C of the certificate that began it; a model restored
// from a snapshot before any step answers the step as the live one.
func TestCerts(t *testing.T) {
	type step struct {
		revoke         bool
		id, assessment string
		at             int  // the C of an issue
		counts         bool // begins (issue) or ends (revocation) a certification
		wantAt         int  // the C a revocation that ends one reports
	}
	issue := func(id, a string, at int, begins bool) step {
		return step{id: id, assessment: a, at: at, counts: begins}
	}
	revoke := func(id string, ends bool, at int) step { return step{revoke: true, id: id, counts: ends, wantAt: at} }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one certificate", []step{issue("c1", "a1", 6, true), revoke("c1", true, 6), revoke("c1", false, 0)}},
		{"corrected, first revoked first", []step{issue("c1", "a1", 6, true), issue("c2", "a1", 7, false),
			revoke("c1", false, 0), revoke("c2", true, 6), revoke("c2", false, 0), revoke("c1", false, 0)}},
		{"corrected, corrected revoked first", []step{issue("c1", "a1", 6, true), issue("c2", "a1", 7, false),
			revoke("c2", false, 0), revoke("c1", true, 6)}},
		{"corrected twice", []step{issue("c1", "a1", 6, true), issue("c2", "a1", 7, false), revoke("c1", false, 0),
			issue("c3", "a1", 8, false), revoke("c2", false, 0), revoke("c3", true, 6)}},
		{"issued again after a revocation", []step{issue("c1", "a1", 6, true), revoke("c1", true, 6),
			issue("c2", "a1", 9, true), issue("c3", "a1", 10, false), revoke("c2", false, 0), revoke("c3", true, 9)}},
		{"two assessments", []step{issue("c1", "a1", 6, true), issue("c2", "a2", 7, true), issue("c3", "a2", 8, false),
			revoke("c1", true, 6), revoke("c2", false, 0), revoke("c3", true, 7)}},
		{"nothing issued", []step{revoke("c1", false, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, q := testKey(1, true), Q(5)
			other := testKey(2, true) // with certificates of the same ids and assessments
			var b CertBook[int]
			var c, o Certs[int]
			b.Issue(other, q, &o, "c1", "a1", 1)
			b.Issue(other, q, &o, "c2", "a1", 1)
			for i, s := range tc.steps {
				do := func(b *CertBook[int], c *Certs[int]) (bool, int) {
					if s.revoke {
						at, ends := b.Revoke(k, q, c, s.id)
						return ends, at
					}
					return b.Issue(k, q, c, s.id, s.assessment, s.at), 0
				}
				rb, rc := restoredCerts(t, &b, &c)
				for what, x := range map[string]struct {
					b *CertBook[int]
					c *Certs[int]
				}{"live": {&b, &c}, "restored": {rb, rc}} {
					if got, at := do(x.b, x.c); got != s.counts || at != s.wantAt {
						t.Fatalf("step %d (%+v), %s: %t at %d; want %t at %d", i, s, what, got, at, s.counts, s.wantAt)
					}
				}
			}
		})
	}
}

// restoredCerts writes b and c to a snapshot and reads them back.
func restoredCerts(t *testing.T, b *CertBook[int], c *Certs[int]) (*CertBook[int], *Certs[int]) {
	t.Helper()
	var buf bytes.Buffer
	w := snap.NewWriter(&buf)
	wr := func(w *snap.Writer, v *int) { w.Int(*v) }
	b.Write(w, wr)
	c.Write(w, wr)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := snap.NewReader(bytes.NewReader(buf.Bytes()))
	rd := func(r *snap.Reader, v *int) { *v = r.Int() }
	var rb CertBook[int]
	var rc Certs[int]
	rb.Read(r, rd)
	rc.Read(r, &rb, rd)
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return &rb, &rc
}
