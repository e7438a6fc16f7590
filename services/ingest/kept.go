package ingest

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// keptPayload is what a rejection keeps of a payload: maskedPayload, and
// of an oversized one the first facts.MaxPayloadSize bytes of that (masked
// before it is cut, so that a number across the cut is masked too: its
// first 17 characters alone would give away the 18th).
func keptPayload(b []byte) []byte { return cut(maskedPayload(b)) }

// cut is the first facts.MaxPayloadSize bytes of a masked payload.
func cut(masked []byte) []byte { return masked[:min(len(masked), facts.MaxPayloadSize)] }

// maskedPayload is the whole payload with every resident ID number in it
// masked (person.RedactIDs, which keeps the length: a protobuf payload
// stays decodable). In JSON a number may be written with \u escapes
// (\u0035\u0030..., or full-width digits as Python's json.dumps writes
// them), which protojson reads as the number: when the escapes resolved
// hold one, the payload is kept with them resolved (valid JSON stays the
// same JSON) and masked. Broken JSON (a trailing comma, a cut body: why
// many are rejected) is resolved the same way.
func maskedPayload(b []byte) []byte {
	if bytes.Contains(b, []byte(`\u`)) {
		if u := unescapeJSON(b); person.ContainsIDLike(string(u)) {
			b = u
		}
	}
	return person.RedactIDs(b)
}

// unescapeJSON returns b with its JSON \u escapes written as the
// characters they stand for, except those a JSON string must escape
// (quotation mark, reverse solidus, control characters) and unpaired
// surrogates; everything else is left as it was. In valid JSON a reverse
// solidus is only ever in a string, so it needs no parsing: a lexical
// pass, which reads broken JSON as well.
func unescapeJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c != '\\' || i+1 >= len(b):
			out = append(out, c)
		case b[i+1] != 'u' || i+5 >= len(b):
			out = append(out, c, b[i+1]) // \" \\ \n ...: kept
			i++
		default:
			r, n := jsonEscape(b[i:])
			if r < 0x20 || r == '"' || r == '\\' || r == utf8.RuneError {
				out = append(out, b[i:i+n]...)
			} else {
				out = utf8.AppendRune(out, r)
			}
			i += n - 1
		}
	}
	return out
}

// jsonEscape reads the \u escape at the start of b (a surrogate pair as
// one character): the character, utf8.RuneError for an unpaired surrogate,
// and how many bytes it took.
func jsonEscape(b []byte) (rune, int) {
	hex4 := func(h []byte) rune {
		v, err := strconv.ParseUint(string(h), 16, 16)
		if err != nil {
			return -1
		}
		return rune(v)
	}
	r := hex4(b[2:6])
	switch {
	case r < 0:
		return utf8.RuneError, 2 // not an escape (broken JSON): its two characters kept
	case utf16.IsSurrogate(r):
		if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if lo := hex4(b[8:12]); lo >= 0 {
				if p := utf16.DecodeRune(r, lo); p != utf8.RuneError {
					return p, 12
				}
			}
		}
		return utf8.RuneError, 6
	}
	return r, 6
}

// keptFor is what a rejection for reason keeps of a payload: keptPayload,
// and for PLAIN_ACCOUNT_NUMBER the account numbers masked too (other
// rejections keep their long numbers: an overflowing amount is why it was
// rejected).
func keptFor(b []byte, reason subsidyv1.ReasonCode) []byte {
	return keptOfMasked(maskedPayload(b), reason)
}

// keptOfMasked is keptFor of a payload maskedPayload masked already.
func keptOfMasked(masked []byte, reason subsidyv1.ReasonCode) []byte {
	kept := cut(masked)
	if reason == subsidyv1.ReasonCode_REASON_CODE_PLAIN_ACCOUNT_NUMBER {
		kept = person.RedactAccountNumbers(kept)
	}
	return kept
}
