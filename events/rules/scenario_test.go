package rules_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/facts"
	"github.com/cqhrss/subsidyledger/events/refdata"
	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Scenario files (testdata/*.txt) are read by supervisors as well as by this
// test. The format, one statement per line:
//
//	# comment
//	include setup.inc                      read another file here
//	ruleset PassRateWindow=4               change a rule-set parameter (before any fact)
//	person alice 500103200305120011        $alice is the person key of the ID number
//	entitlement e1 alice big-data/junior   $e1 is the entitlement id of (alice, qualification)
//	order o1 e1 1                          $o1 is the payment order id of attempt 1 of $e1
//	clawback c1 e1                         $c1 is the clawback id of $e1
//	given <source>.<fact> <json>           a fact that must be accepted (its consequences unchecked)
//	when <source>.<fact> <json>            the fact under test; followed by
//	then <EventType> field=value ...       the next derived event, with the fields given
//	then nothing                           no (more) derived events
//	reject <REASON_CODE_...>               the fact is rejected with this code
//
// JSON is canonical protojson with three shorthands: $name (a variable),
// @2025-06-30 (a Date) and %big-data/junior (a Qualification). Field paths
// use proto names with dots (payee.kind); enum values are compared by name,
// dates as yyyy-mm-dd.

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runScenario(t, f)
		})
	}
}

type line struct {
	file string
	no   int
	text string
}

func (l line) String() string { return fmt.Sprintf("%s:%d", filepath.Base(l.file), l.no) }

func readLines(t *testing.T, file string) []line {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(s, "include "); ok {
			out = append(out, readLines(t, filepath.Join(filepath.Dir(file), strings.TrimSpace(rest)))...)
			continue
		}
		out = append(out, line{file, n, s})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	varRE  = regexp.MustCompile(`\$[A-Za-z0-9_]+`)
	dateRE = regexp.MustCompile(`@(\d{4})-(\d{2})-(\d{2})`)
	qualRE = regexp.MustCompile(`%([a-z-]+)/([a-z]+)`)
)

func parseQual(s string) (refdata.Qualification, error) {
	occ, lvl, ok := strings.Cut(s, "/")
	if !ok {
		return refdata.Qualification{}, fmt.Errorf("qualification %q: want occupation/level", s)
	}
	var q refdata.Qualification
	for _, o := range refdata.Occupations() {
		if o.Slug == occ {
			q.Occupation = o.Code
		}
	}
	for _, l := range refdata.Levels() {
		if l.Slug == lvl {
			q.Level = l.Code
		}
	}
	if !q.Valid() {
		return q, fmt.Errorf("unknown qualification %q", s)
	}
	return q, nil
}

type scenario struct {
	t       *testing.T
	rs      rules.RuleSet
	l       *ledger
	vars    map[string]string
	keyer   interface{ Key(string) (string, error) }
	pending *pendingResult
}

type pendingResult struct {
	at       line
	decision rules.Decision
	rej      *rules.Rejection
	next     int // next derived event to match
	checked  bool
}

func (s *scenario) expand(at line, text string) string {
	text = varRE.ReplaceAllStringFunc(text, func(v string) string {
		val, ok := s.vars[v[1:]]
		if !ok {
			s.t.Fatalf("%s: unknown variable %s", at, v)
		}
		return val
	})
	text = dateRE.ReplaceAllStringFunc(text, func(m string) string {
		d, err := refdata.ParseDate(m[1:])
		if err != nil {
			s.t.Fatalf("%s: %v", at, err)
		}
		return fmt.Sprintf(`{"year":%d,"month":%d,"day":%d}`, d.Year(), int(d.Month()), d.Day())
	})
	return qualRE.ReplaceAllStringFunc(text, func(m string) string {
		q, err := parseQual(m[1:])
		if err != nil {
			s.t.Fatalf("%s: %v", at, err)
		}
		return fmt.Sprintf(`{"occupation":%q,"level":%q}`, q.Occupation, q.Level)
	})
}

func (s *scenario) fact(at line, rest string) rules.Fact {
	subject, payload, ok := strings.Cut(rest, " ")
	if !ok {
		s.t.Fatalf("%s: want <source>.<fact> <json>", at)
	}
	kind, ok := facts.BySubject("", facts.DefaultPrefix+"."+subject)
	if !ok {
		s.t.Fatalf("%s: unknown fact subject %q", at, subject)
	}
	msg, err := facts.Decode(kind, facts.ContentTypeJSON, []byte(s.expand(at, payload)))
	if err != nil {
		s.t.Fatalf("%s: %v", at, err)
	}
	msgID := at.String()
	return rules.Fact{EventID: events.DeriveID("fact", msgID), MessageID: msgID, Source: kind.Source, Payload: msg}
}

func (s *scenario) settle() {
	p := s.pending
	if p == nil {
		return
	}
	s.pending = nil
	if !p.checked {
		s.t.Errorf("%s: when without then or reject", p.at)
		return
	}
	if p.rej == nil {
		if rest := p.decision.Derived()[p.next:]; len(rest) > 0 {
			for _, e := range rest {
				s.t.Errorf("%s: unexpected %s %v", p.at, e.Type(), e.Payload)
			}
		}
	}
}

func runScenario(t *testing.T, file string) {
	s := &scenario{t: t, rs: rules.DefaultRuleSet(), vars: map[string]string{}, keyer: testKeyer(t)}
	for _, ln := range readLines(t, file) {
		verb, rest, _ := strings.Cut(ln.text, " ")
		rest = strings.TrimSpace(rest)
		f := strings.Fields(rest)
		switch verb {
		case "ruleset":
			if s.l != nil {
				t.Fatalf("%s: ruleset after the first fact", ln)
			}
			for _, kv := range f {
				setParam(t, ln, &s.rs, kv)
			}
		case "person":
			key, err := s.keyer.Key(f[1])
			if err != nil {
				t.Fatalf("%s: %v", ln, err)
			}
			s.vars[f[0]] = key
		case "entitlement":
			q, err := parseQual(f[2])
			if err != nil {
				t.Fatalf("%s: %v", ln, err)
			}
			s.vars[f[0]] = rules.EntitlementID(s.vars[f[1]], q)
		case "order":
			n, _ := strconv.Atoi(f[2])
			s.vars[f[0]] = rules.PaymentOrderID(s.vars[f[1]], uint32(n))
		case "clawback":
			s.vars[f[0]] = rules.ClawbackID(s.vars[f[1]])
		case "given", "when":
			s.settle()
			if s.l == nil {
				s.l = newLedger(t, s.rs)
			}
			d, rej := s.l.decide(s.fact(ln, rest))
			if verb == "given" {
				if rej != nil {
					t.Fatalf("%s: given fact rejected: %v", ln, rej)
				}
				continue
			}
			s.pending = &pendingResult{at: ln, decision: d, rej: rej}
		case "then", "reject":
			p := s.pending
			if p == nil {
				t.Fatalf("%s: %s without when", ln, verb)
			}
			p.checked = true
			if verb == "reject" {
				if c, ok := subsidyv1.ReasonCode_value[f[0]]; ok {
					cover(subsidyv1.ReasonCode(c))
				}
				if p.rej == nil {
					t.Errorf("%s: Decide accepted; want reject %s (derived %s)", ln, f[0], types(p.decision.Derived()))
				} else if p.rej.Reason.String() != f[0] {
					t.Errorf("%s: Decide rejected %s (%s); want %s", ln, p.rej.Reason, p.rej.Detail, f[0])
				}
				continue
			}
			if p.rej != nil {
				t.Errorf("%s: Decide rejected %s (%s); want %s", ln, p.rej.Reason, p.rej.Detail, rest)
				continue
			}
			der := p.decision.Derived()
			if f[0] == "nothing" {
				continue // settle reports leftovers
			}
			if p.next >= len(der) {
				t.Errorf("%s: want %s; no more derived events", ln, rest)
				continue
			}
			e := der[p.next]
			p.next++
			if got := string(e.Payload.ProtoReflect().Descriptor().Name()); got != f[0] {
				t.Errorf("%s: derived %s %v; want %s", ln, got, e.Payload, f[0])
				continue
			}
			for _, kv := range f[1:] {
				k, want, _ := strings.Cut(kv, "=")
				want = s.expand(ln, want)
				if c, ok := subsidyv1.ReasonCode_value[want]; ok {
					cover(subsidyv1.ReasonCode(c))
				}
				got, err := fieldString(e.Payload, k)
				if err != nil {
					t.Errorf("%s: %v", ln, err)
				} else if got != want {
					t.Errorf("%s: %s.%s = %q; want %q", ln, f[0], k, got, want)
				}
			}
		default:
			t.Fatalf("%s: unknown statement %q", ln, verb)
		}
	}
	s.settle()
	if s.l != nil {
		checkInvariants(t, s.l.log)
	}
}

func types(evs []rules.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, string(e.Payload.ProtoReflect().Descriptor().Name()))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func setParam(t *testing.T, at line, rs *rules.RuleSet, kv string) {
	k, v, _ := strings.Cut(kv, "=")
	n, err := strconv.Atoi(v)
	num := func() int {
		if err != nil {
			t.Fatalf("%s: %s: %v", at, k, err)
		}
		return n
	}
	switch k {
	case "YearlyCap":
		rs.YearlyCap = num()
	case "NoticeWorkingDays":
		rs.NoticeWorkingDays = num()
	case "PassRateThresholdBP":
		rs.PassRateThresholdBP = num()
	case "PassRateWindow":
		rs.PassRateWindow = num()
	case "LowerAfterHigher":
		rs.LowerAfterHigher = v == "true"
	case "CertificateSpikeFactor":
		rs.CertificateSpikeFactor = num()
	case "CertificateSpikeMonths":
		rs.CertificateSpikeMonths = num()
	case "CertificateSpikeMinimum":
		rs.CertificateSpikeMinimum = num()
	case "SharedAccountThreshold":
		rs.SharedAccountThreshold = num()
	case "Holiday":
		d, err := refdata.ParseDate(v)
		if err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		rs.Holidays = append(rs.Holidays, d)
	default:
		t.Fatalf("%s: unknown rule-set parameter %q", at, k)
	}
	rs.Version = "scenario"
}

// fieldString renders the field at a dotted proto-name path.
func fieldString(m proto.Message, path string) (string, error) {
	r := m.ProtoReflect()
	parts := strings.Split(path, ".")
	for i, p := range parts {
		fd := r.Descriptor().Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			return "", fmt.Errorf("%s has no field %q", r.Descriptor().Name(), p)
		}
		v := r.Get(fd)
		if i < len(parts)-1 {
			if fd.Kind() != protoreflect.MessageKind {
				return "", fmt.Errorf("%s is not a message", p)
			}
			r = v.Message()
			continue
		}
		switch {
		case fd.IsList():
			var s []string
			for j := 0; j < v.List().Len(); j++ {
				s = append(s, fmt.Sprint(v.List().Get(j).Interface()))
			}
			return strings.Join(s, ","), nil
		case fd.Kind() == protoreflect.EnumKind:
			if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
				return string(ev.Name()), nil
			}
			return strconv.Itoa(int(v.Enum())), nil
		case fd.Kind() == protoreflect.MessageKind:
			if dm, ok := v.Message().Interface().(*subsidyv1.Date); ok {
				d, _ := refdata.FromProto(dm)
				return d.String(), nil
			}
			return fmt.Sprint(v.Message().Interface()), nil
		default:
			return fmt.Sprint(v.Interface()), nil
		}
	}
	return "", fmt.Errorf("empty path")
}
