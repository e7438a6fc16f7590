package changefeed

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends c as encoding/json encodes it, byte for byte (the
// change feed encodes a dozen of them per fact; reflection was most of the
// feed's cost). The postings, rare, still go through encoding/json.
func appendJSON(b []byte, c *Change) ([]byte, error) {
	b = append(b, `{"projection":`...)
	b = appendString(b, c.Projection)
	b = append(b, `,"position":`...)
	b = strconv.AppendUint(b, uint64(c.Position), 10)
	b = append(b, `,"event_type":`...)
	b = appendString(b, c.EventType)
	b = append(b, `,"event_id":`...)
	b = appendString(b, c.EventID)
	for _, f := range [...]struct{ name, v string }{
		{`,"person_key":`, c.PersonKey},
		{`,"entitlement_id":`, c.EntitlementID},
		{`,"clawback_id":`, c.ClawbackID},
		{`,"flag_id":`, c.FlagID},
	} {
		if f.v != "" {
			b = appendString(append(b, f.name...), f.v)
		}
	}
	if len(c.Institutions) > 0 {
		b = append(b, `,"institutions":[`...)
		for i, s := range c.Institutions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if c.Year != 0 {
		b = strconv.AppendInt(append(b, `,"year":`...), int64(c.Year), 10)
	}
	if c.UnitCode != "" {
		b = appendString(append(b, `,"unit_code":`...), c.UnitCode)
	}
	if len(c.Postings) > 0 {
		p, err := json.Marshal(c.Postings)
		if err != nil {
			return b, err
		}
		b = append(append(b, `,"postings":`...), p...)
	}
	if c.Resync {
		b = append(b, `,"resync":true`...)
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json writes it:
// HTML characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
