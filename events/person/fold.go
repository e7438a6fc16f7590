package person

// A number typed on a Chinese keyboard, or pasted from a document, is
// often written in full-width characters (６２２２ ０２００…, ４４０１…Ｘ),
// or grouped with a no-break or ideographic space. The scanners read the
// text with those folded to their ASCII forms, and mask every byte of a
// character they hide (a full-width digit becomes "***": the length in
// bytes does not change, and the text stays valid UTF-8).
//
// Folded: the full-width forms of ASCII (U+FF01–U+FF5E), the ideographic
// space (U+3000) and the no-break space (U+00A0).

// foldable reports whether s holds a character fold folds. It does not
// allocate: the scanners call it on every message.
func foldable[T ~string | ~[]byte](s T) bool {
	for i := 0; i+1 < len(s); i++ {
		if _, w := foldAt(s, i); w > 1 {
			return true
		}
	}
	return false
}

// foldAt returns the ASCII form of the character starting at s[i] and its
// width in bytes when fold folds it; otherwise s[i] and 1.
func foldAt[T ~string | ~[]byte](s T, i int) (byte, int) {
	switch c := s[i]; {
	case c == 0xC2 && i+1 < len(s) && s[i+1] == 0xA0: // U+00A0
		return ' ', 2
	case c == 0xE3 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x80: // U+3000
		return ' ', 3
	case c == 0xEF && i+2 < len(s) && s[i+1] == 0xBC && s[i+2] >= 0x81 && s[i+2] <= 0xBF: // U+FF01–U+FF3F
		return 0x20 + s[i+2] - 0x80, 3
	case c == 0xEF && i+2 < len(s) && s[i+1] == 0xBD && s[i+2] >= 0x80 && s[i+2] <= 0x9E: // U+FF40–U+FF5E
		return 0x60 + s[i+2] - 0x80, 3
	default:
		return c, 1
	}
}

// fold returns s with the characters fold folds in their ASCII forms, and,
// for each byte of the result, the index in s of the character it came
// from.
func fold[T ~string | ~[]byte](s T) (folded []byte, from []int) {
	folded, from = make([]byte, 0, len(s)), make([]int, 0, len(s))
	for i := 0; i < len(s); {
		c, w := foldAt(s, i)
		folded, from = append(folded, c), append(from, i)
		i += w
	}
	return folded, from
}

// scanFolded runs scan over s, folded if it holds anything fold folds; mask
// (if not nil) gets the index in s of every byte to hide.
func scanFolded[T ~string | ~[]byte](s T, scan func(s []byte, mask func(int)) bool, mask func(int)) bool {
	f, from := fold(s)
	if mask == nil {
		return scan(f, nil)
	}
	return scan(f, func(i int) {
		_, w := foldAt(s, from[i])
		for k := range w {
			mask(from[i] + k)
		}
	})
}
