package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

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

// Personal data that is not an ID number: a name, an account. A rejection
// keeps the message as it came, so a publisher's mistake would put them
// in the log, which cannot forget them (found by review: an enrolment
// system sending a name unmasked, and personal data sent to an inbound
// subject instead of <prefix>.pii.<source>, each kept the full name, the
// second the plain account too). Each value below is overwritten with
// '*', byte for byte (a protobuf payload stays decodable, a JSON one
// valid JSON):
//
//   - a fact's masked_name that is not masked (facts.IsMaskedName);
//   - on a subject that names no fact, the fields of personal data
//     (PersonalDataSubmitted's id_number, name and payee_account: what a
//     message meant for the vault carries), in JSON under any of their
//     names, in protobuf by their field numbers.
//
// A name in free text (a reason, a summary) or in a header, or in a
// protobuf payload of no known type under other field numbers, is not
// found: no pattern tells a name from other words.
var (
	unknownPersonal = map[string]bool{"id_number": true, "name": true, "payee_account": true, "masked_name": true}
	piiFields       = (&subsidyv1.PersonalDataSubmitted{}).ProtoReflect().Descriptor().Fields()
)

// unnamed masks, in b (a payload masked by maskedPayload, which it may
// change in place), the personal data above. kind is the subject's fact,
// known reports whether it names one.
func unnamed(b []byte, kind facts.Kind, known bool) []byte {
	if len(b) == 0 {
		return b
	}
	if json.Valid(b) || bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		return unnamedJSON(b, known)
	}
	var fields protoreflect.FieldDescriptors = piiFields
	if known {
		fields = kind.New().ProtoReflect().Descriptor().Fields()
	}
	return unnamedProto(b, fields, known)
}

// personalValue reports whether the value v of the field or key name is
// masked by unnamed.
func personalValue(name string, v []byte, known bool) bool {
	switch {
	case name == "masked_name":
		return !facts.IsMaskedName(string(v))
	case known:
		return false
	}
	return unknownPersonal[name]
}

// unnamedJSON masks the string values of personal keys, read lexically (a
// rejected payload is often broken JSON): "key" : "value". A key is
// compared in snake case (maskedName and masked_name alike).
func unnamedJSON(b []byte, known bool) []byte {
	out := b
	copied := false
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		kEnd := stringEnd(b, i)
		if kEnd < 0 {
			break
		}
		key := b[i+1 : kEnd]
		j := skipSpace(b, kEnd+1)
		if j >= len(b) || b[j] != ':' {
			i = kEnd
			continue
		}
		j = skipSpace(b, j+1)
		if j >= len(b) || b[j] != '"' {
			i = j - 1
			continue
		}
		vEnd := stringEnd(b, j)
		if vEnd < 0 {
			vEnd = len(b) // cut inside the value: mask to the end
		}
		val := b[j+1 : vEnd]
		if personalValue(snake(key), unescapeJSON(val), known) {
			if !copied {
				out, copied = bytes.Clone(b), true
			}
			for k := j + 1; k < vEnd; k++ {
				out[k] = '*'
			}
		}
		i = vEnd
	}
	return out
}

// skipSpace returns the index of the first byte of b from i on that is
// not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quotation mark that closes the JSON
// string opening at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// snake writes a JSON key as its protobuf field name: maskedName →
// masked_name.
func snake(k []byte) string {
	var s []byte
	for _, c := range k {
		if c >= 'A' && c <= 'Z' {
			s = append(s, '_', c+'a'-'A')
			continue
		}
		s = append(s, c)
	}
	return string(s)
}

// unnamedProto masks the top-level string fields of a protobuf payload
// that fields names as personal; a payload that is not protobuf is left
// as it is.
func unnamedProto(b []byte, fields protoreflect.FieldDescriptors, known bool) []byte {
	out := b
	copied := false
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return out
		}
		start := i + n
		m := protowire.ConsumeFieldValue(num, typ, b[start:])
		if m < 0 {
			return out
		}
		if f := fields.ByNumber(num); f != nil && typ == protowire.BytesType && f.Kind() == protoreflect.StringKind {
			v, vn := protowire.ConsumeBytes(b[start:])
			if vn > 0 && personalValue(string(f.Name()), v, known) {
				if !copied {
					out, copied = bytes.Clone(b), true
				}
				for k := start + vn - len(v); k < start+vn; k++ {
					out[k] = '*'
				}
			}
		}
		i = start + m
	}
	return out
}
