package person_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/person"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		problem person.Problem
	}{
		{"11010519491231002X", "11010519491231002X", ""},
		{"11010519491231002x", "11010519491231002X", ""}, // lower-case x normalised
		{"  500103200305120011 ", "500103200305120011", ""},
		{"500103200305120012", "", person.ProblemCheckDigit},
		{"11010519491231002", "", person.ProblemLength},
		{"11010519491231002XX", "", person.ProblemLength},
		{"", "", person.ProblemLength},
		{"1101051949123100２X", "", person.ProblemLength}, // a full-width digit is 3 bytes
		{"A10105194912310021", "", person.ProblemCharacters},
		{"11010519491231002Y", "", person.ProblemCharacters},
		{"99010519491231002X", "", person.ProblemRegion},
		{"110105194902300021", "", person.ProblemBirthDate},  // 30 February
		{"110105189912310021", "", person.ProblemBirthDate},  // 1899: before MinBirthYear
		{"110105210001010021", "", person.ProblemBirthDate},  // 2100: after MaxBirthYear
		{"110105190001010026", "", person.ProblemCheckDigit}, // 1900-01-01 is in range
	}
	for _, tt := range tests {
		got, err := person.Normalize(tt.in)
		var ie *person.IDError
		switch {
		case tt.problem == "" && err != nil:
			t.Errorf("Normalize(%q) = %v; want %q", tt.in, err, tt.want)
		case tt.problem == "" && got != tt.want:
			t.Errorf("Normalize(%q) = %q; want %q", tt.in, got, tt.want)
		case tt.problem != "" && (!errors.As(err, &ie) || ie.Problem != tt.problem):
			t.Errorf("Normalize(%q) = %q, %v; want problem %s", tt.in, got, err, tt.problem)
		case tt.problem != "" && !errors.Is(err, person.ErrInvalidID):
			t.Errorf("Normalize(%q): error %v is not ErrInvalidID", tt.in, err)
		case err != nil && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) && len(strings.TrimSpace(tt.in)) > 4:
			t.Errorf("Normalize(%q): error %q contains the ID number", tt.in, err)
		}
	}
}

func TestCheckDigit(t *testing.T) {
	// Every check character, including X (remainder 2), appears.
	for _, id := range []string{"11010519491231002X", "500103200305120011", "500112199901010020", "500221198503150033"} {
		if got := person.CheckDigit(id[:17]); got != id[17] {
			t.Errorf("CheckDigit(%q) = %c; want %c", id[:17], got, id[17])
		}
	}
}

func TestKeyer(t *testing.T) {
	if _, err := person.NewKeyer(make([]byte, 31)); !errors.Is(err, person.ErrShortKey) {
		t.Errorf("NewKeyer(31 bytes) = %v; want ErrShortKey", err)
	}
	secret := []byte(strings.Repeat("k", 32))
	k, err := person.NewKeyer(secret)
	if err != nil {
		t.Fatal(err)
	}
	secret[0] = 'z' // the keyer copied the secret
	a, err := k.Key("11010519491231002X")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Key(" 11010519491231002x")
	if a != b {
		t.Errorf("Key differs for the same person: %s, %s", a, b)
	}
	// HMAC-SHA256(k×32, "11010519491231002X"), computed independently (Python hmac).
	const want = "6baaf2c3cf3a29a4ac710aeeffadb8c04c2481b727a970349d0a73ca269751fb"
	if a != want {
		t.Errorf("Key = %s; want %s", a, want)
	}
	if !person.ValidKey(a) {
		t.Errorf("ValidKey(Key(...)) = false")
	}
	k2, _ := person.NewKeyer([]byte(strings.Repeat("j", 32)))
	if c, _ := k2.Key("11010519491231002X"); c == a {
		t.Errorf("two secrets give one key")
	}
	if _, err := k.Key("11010519491231002"); !errors.Is(err, person.ErrInvalidID) {
		t.Errorf("Key(invalid) = %v; want ErrInvalidID", err)
	}
}

func TestValidKey(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	tests := map[string]bool{
		good:                  true,
		strings.ToUpper(good): false,
		good[:63]:             false,
		good + "0":            false,
		good[:63] + "g":       false,
		"":                    false,
		"11010519491231002X":  false,
	}
	for in, want := range tests {
		if got := person.ValidKey(in); got != want {
			t.Errorf("ValidKey(%q) = %v; want %v", in, got, want)
		}
	}
}

func TestMaskID(t *testing.T) {
	tests := map[string]string{
		"500103200305120011":  "5001**********0011",
		"11010519491231002x":  "1101**********002X",
		" 11010519491231002X": "1101**********002X",
		"123456789":           "1234*6789",
		"12345678":            "********",
		"":                    "",
	}
	for in, want := range tests {
		if got := person.MaskID(in); got != want {
			t.Errorf("MaskID(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestMaskName(t *testing.T) {
	tests := map[string]string{
		"":          "",
		"张":         "*",
		"张三":        "张*",
		"张小三":       "张*三",
		"欧阳小明":      "欧**明",
		" 李四 ":      "李*",
		"阿卜杜拉·买买提":  "阿******提",
		"Li":        "L*",
		"Zhang San": "Z*******n",
		"😀😀😀":       "😀*😀",
	}
	for in, want := range tests {
		if got := person.MaskName(in); got != want {
			t.Errorf("MaskName(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzValidateID: Normalize never panics; what it accepts is 18 ASCII
// characters with a correct check digit, stable under normalisation, and
// masking never shows more than 8 characters.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "11010519491231002x", "500103200305120011", "", "x", "５００１０３２００３０５１２００１１", "500103200302300011", "00000000000000000\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := person.Normalize(s)
		if err != nil {
			var ie *person.IDError
			if !errors.As(err, &ie) {
				t.Fatalf("Normalize(%q): error %T is not an *IDError", s, err)
			}
			return
		}
		if len(n) != 18 || person.CheckDigit(n[:17]) != n[17] {
			t.Fatalf("Normalize(%q) = %q: not a valid ID", s, n)
		}
		if again, err := person.Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize is not idempotent on %q: %q, %v", n, again, err)
		}
		if m := person.MaskID(n); strings.Count(m, "*") != 10 {
			t.Fatalf("MaskID(%q) = %q", n, m)
		}
	})
}

func TestRedactIDs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no id here 12345", "no id here 12345"},
		{"500103200305120011", "5001**********0011"},
		{`{"id_number":"500103200305120011","x":1}`, `{"id_number":"5001**********0011","x":1}`},
		{"a 11010519491231002x b", "a 1101**********002x b"},
		{"500103200305120012", "5001**********0012"},   // a wrong check digit: still masked
		{"9500103200305120011", "95001**********0011"}, // inside a longer run
		{"500103200305120011500103200305120011", "5001**********00115001**********0011"},
		// Written in groups, with spaces or hyphens.
		{"payee 500103 20030512 0011 closed", "payee 5001** ******** 0011 closed"},
		{"500103-20030512-0011", "5001**-********-0011"},
		{"110105 19491231 002x", "1101** ******** 002x"},
		{"500103 20030512-0011", "500103 20030512-0011"},     // mixed separators: not a written form
		{"500103  20030512 0011", "500103  20030512 0011"},   // two spaces
		{"500103 20031512 0011", "500103 20031512 0011"},     // month 15: no birth date
		{"990103 20030512 0011", "990103 20030512 0011"},     // no province 99
		{"old 110105491231002 id", "old 1101********002 id"}, // 15 digits, 1949-12-31
		{"110105491231002", "1101********002"},               // at both ends
		{"9500103 20030512 0011", "9500103 20030512 0011"},   // the groups' tail of a longer number
		{"500103 20030512 00119", "500103 20030512 00119"},
		{"1101054912310021", "1101054912310021"},               // 16 digits: not an old number
		{"110105491331002", "110105491331002"},                 // month 13
		{"order 20250615000000001", "order 20250615000000001"}, // no province 20, no date
		{"fee 2800000 fen", "fee 2800000 fen"},
		// Full-width digits and X, and other spaces: each masked
		// character's bytes become stars (a full-width digit, three).
		{"身份证５００１０３２００３０５１２００１１。", "身份证５００１******************************００１１。"},
		{"１１０１０５１９４９１２３１００２Ｘ", "１１０１******************************００２Ｘ"},
		{"5001０3200305120011", "5001************0011"}, // one full-width digit among ASCII ones
		{"500103\u00a020030512\u00a00011", "5001**\u00a0********\u00a00011"},
		{"500103\u300020030512\u30000011", "5001**\u3000********\u30000011"},
		{"５００１０３２００３０５１２", "５００１０３２００３０５１２"}, // 14 digits: none
	} {
		if got := person.RedactIDString(tc.in); got != tc.want {
			t.Errorf("RedactIDString(%q) = %q; want %q", tc.in, got, tc.want)
		}
		if got := person.RedactIDs([]byte(tc.in)); string(got) != tc.want || len(got) != len(tc.in) {
			t.Errorf("RedactIDs(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	in := []byte("500103200305120011")
	person.RedactIDs(in)
	if string(in) != "500103200305120011" {
		t.Errorf("RedactIDs changed its input: %q", in)
	}
}

// TestContainsID checks that ContainsID finds valid numbers only, in both
// forms, and ContainsIDLike what RedactIDs masks.
func TestContainsID(t *testing.T) {
	for _, tc := range []struct {
		in         string
		valid, any bool
	}{
		{"500103200305120011", true, true},
		{"x 500103 20030512 0011 y", true, true},
		{"500103-20030512-0011", true, true},
		{"５００１０３２００３０５１２００１１", true, true},    // full-width
		{"500103200305120012", false, true},   // wrong check digit
		{"500103 20030512 0012", false, true}, // wrong check digit, written
		{"110105491231002", false, true},      // old 15-digit
		{"certificate 2025-0001", false, false},
		{"", false, false},
	} {
		if got := person.ContainsID(tc.in); got != tc.valid {
			t.Errorf("ContainsID(%q) = %v; want %v", tc.in, got, tc.valid)
		}
		if got := person.ContainsIDLike(tc.in); got != tc.any {
			t.Errorf("ContainsIDLike(%q) = %v; want %v", tc.in, got, tc.any)
		}
	}
}

// TestContainsIDAgreesWithValid: on 18 characters alone, ContainsID is
// Valid and ContainsIDLike is Valid but for the check digit, over random
// candidates near valid ones (every region, date and check case).
func TestContainsIDAgreesWithValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const digits = "0123456789"
	for range 200000 {
		b := []byte(fmt.Sprintf("%02d%04d%04d%02d%02d%03d", rng.IntN(100), rng.IntN(10000), 1890+rng.IntN(220), rng.IntN(14), rng.IntN(33), rng.IntN(1000)))
		b = append(b, "0123456789Xx"[rng.IntN(12)])
		if rng.IntN(4) == 0 {
			b[rng.IntN(17)] = digits[rng.IntN(10)]
		}
		s := string(b)
		if got, want := person.ContainsID(s), person.Valid(s); got != want {
			t.Fatalf("ContainsID(%q) = %v; Valid %v", s, got, want)
		}
		fixed := s[:17] + string(person.CheckDigit(s[:17]))
		if got, want := person.ContainsIDLike(s), person.Valid(fixed); got != want {
			t.Fatalf("ContainsIDLike(%q) = %v; Valid with its check digit put right %v", s, got, want)
		}
	}
}

func TestRedactIDStringAllocatesOnlyToMask(t *testing.T) {
	for _, s := range []string{"subsidy.in.enrolment.trainee_registered", "msg-12345678901234567", "ab 500103 20031512 0011 cd 110105491331002"} {
		if n := testing.AllocsPerRun(100, func() { person.RedactIDString(s) }); n != 0 {
			t.Errorf("RedactIDString(%q), no ID number in it: %v allocations", s, n)
		}
	}
}

// TestContainsLoneID: an ID number by itself, as an account field may
// hold one, and not 18 characters of a longer account number.
func TestContainsLoneID(t *testing.T) {
	const id = "50010119900101107X"
	wide := ""
	for _, c := range id {
		wide += string(c + 0xFEE0)
	}
	for _, c := range []struct {
		s    string
		want bool
	}{
		{id, true}, {"500101199001011002", true}, {"50010119900101107x", true}, {wide, true},
		{"acct " + id + " ref", true}, {"500101 19900101 107X", true}, {"500101-19900101-107X", true},
		{"TX500101199001011002", true}, {"x" + id, true}, {"500101199001011002x1", true}, {id + "abc", true}, // letters around it (found by review)
		{"9" + "500101199001011002", false}, // 19 digits: an account whose last 18 pass the check
		{"500101199001011002" + "7", false},
		{"50010119900101107Y", false}, {"500101199001011003", false}, // a wrong check digit
		{"500101 19900101-107X", false}, {"trainee-account-token-0182ce950f5ecca6", false}, {"", false},
	} {
		if got := person.ContainsLoneID(c.s); got != c.want {
			t.Errorf("ContainsLoneID(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}
