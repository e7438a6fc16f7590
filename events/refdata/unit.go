package refdata

import (
	"errors"
	"fmt"
	"sort"
	"time"

	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// Unit is one row (version) of the management-unit table.
type Unit struct {
	// Code is the stable unit code, e.g. "cq-yuzhong".
	Code string
	Name string
	Kind subsidyv1.UnitKind
	// ValidFrom is the first day the row is in force; ValidTo the last
	// (zero: still in force).
	ValidFrom Date
	ValidTo   Date
	// Successor is the unit that took this one over when it was abolished.
	Successor string
}

// InForce reports whether the row is in force on d.
func (u Unit) InForce(d Date) bool {
	return u.ValidFrom <= d && (u.ValidTo.IsZero() || d <= u.ValidTo)
}

// FromUnitDefined converts a UnitDefined fact into a row.
func FromUnitDefined(m *subsidyv1.UnitDefined) (Unit, error) {
	from, ok1 := FromProto(m.GetValidFrom())
	to, ok2 := FromProto(m.GetValidTo())
	if !ok1 || !ok2 {
		return Unit{}, fmt.Errorf("refdata: unit %q: invalid validity date", m.GetUnitCode())
	}
	return Unit{Code: m.GetUnitCode(), Name: m.GetName(), Kind: m.GetKind(), ValidFrom: from, ValidTo: to, Successor: m.GetSuccessorCode()}, nil
}

// Proto converts the row into a UnitDefined message.
func (u Unit) Proto() *subsidyv1.UnitDefined {
	return &subsidyv1.UnitDefined{UnitCode: u.Code, Name: u.Name, Kind: u.Kind, ValidFrom: u.ValidFrom.Proto(), ValidTo: u.ValidTo.Proto(), SuccessorCode: u.Successor}
}

// SeedEpoch is the ValidFrom of every seed row not created by a later change.
var SeedEpoch = D(2020, time.January, 1)

// ReformDate is the day 两江新区 became a district and 江北区, 渝北区 ended.
var ReformDate = D(2025, time.November, 6)

// Errors of the unit table. Compare with errors.Is.
var (
	// ErrUnknownUnit: no row has the code.
	ErrUnknownUnit = errors.New("refdata: unknown unit")
	// ErrNotInForce: the code exists but no row of it is in force on the date.
	ErrNotInForce = errors.New("refdata: unit not in force on the date")
	// ErrBadUnit: a row is malformed (empty code or name, unknown kind,
	// ValidTo before ValidFrom, unknown or self successor, successor cycle,
	// overlapping versions).
	ErrBadUnit = errors.New("refdata: malformed unit row")
)

// Table is the versioned management-unit table. A Table is immutable: With
// returns a changed copy, so a Table can be shared between readers.
type Table struct {
	rows map[string][]Unit // by code, ordered by ValidFrom
}

func seedRows() []Unit {
	var rows []Unit
	add := func(kind subsidyv1.UnitKind, pairs ...string) {
		for i := 0; i < len(pairs); i += 2 {
			rows = append(rows, Unit{Code: pairs[i], Name: pairs[i+1], Kind: kind, ValidFrom: SeedEpoch})
		}
	}
	rows = append(rows, Unit{Code: "cq-liangjiang", Name: "两江新区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: ReformDate})
	add(subsidyv1.UnitKind_UNIT_KIND_DISTRICT,
		"cq-wanzhou", "万州区", "cq-qianjiang", "黔江区", "cq-fuling", "涪陵区", "cq-yuzhong", "渝中区",
		"cq-dadukou", "大渡口区", "cq-shapingba", "沙坪坝区", "cq-jiulongpo", "九龙坡区", "cq-nanan", "南岸区",
		"cq-beibei", "北碚区", "cq-banan", "巴南区", "cq-changshou", "长寿区", "cq-jiangjin", "江津区",
		"cq-hechuan", "合川区", "cq-yongchuan", "永川区", "cq-nanchuan", "南川区", "cq-qijiang", "綦江区",
		"cq-dazu", "大足区", "cq-bishan", "璧山区", "cq-tongliang", "铜梁区", "cq-tongnan", "潼南区",
		"cq-rongchang", "荣昌区", "cq-kaizhou", "开州区", "cq-liangping", "梁平区", "cq-wulong", "武隆区")
	add(subsidyv1.UnitKind_UNIT_KIND_COUNTY,
		"cq-chengkou", "城口县", "cq-fengdu", "丰都县", "cq-dianjiang", "垫江县", "cq-zhongxian", "忠县",
		"cq-yunyang", "云阳县", "cq-fengjie", "奉节县", "cq-wushan", "巫山县", "cq-wuxi", "巫溪县")
	add(subsidyv1.UnitKind_UNIT_KIND_AUTONOMOUS_COUNTY,
		"cq-shizhu", "石柱土家族自治县", "cq-xiushan", "秀山土家族苗族自治县",
		"cq-youyang", "酉阳土家族苗族自治县", "cq-pengshui", "彭水苗族土家族自治县")
	last := ReformDate.AddDays(-1)
	rows = append(rows,
		Unit{Code: "cq-jiangbei", Name: "江北区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: SeedEpoch, ValidTo: last, Successor: "cq-liangjiang"},
		Unit{Code: "cq-yubei", Name: "渝北区", Kind: subsidyv1.UnitKind_UNIT_KIND_DISTRICT, ValidFrom: SeedEpoch, ValidTo: last, Successor: "cq-liangjiang"})
	add(subsidyv1.UnitKind_UNIT_KIND_FUNCTIONAL_ZONE,
		"cq-gaoxin", "西部科学城重庆高新区", "cq-wansheng", "万盛经开区")
	return rows
}

var seed = func() *Table {
	t := &Table{rows: make(map[string][]Unit)}
	for _, u := range seedRows() {
		t.rows[u.Code] = append(t.rows[u.Code], u)
	}
	if err := t.check(); err != nil {
		panic(err)
	}
	return t
}()

// Seed returns the built-in table: 41 rows (the 37 units in force since
// 2025-11-06, the two abolished districts, the two functional zones).
func Seed() *Table { return seed }

// NewTable returns the table of rows (any order), as Units lists them. It
// fails with ErrBadUnit if they are inconsistent, or if two rows have the
// same code and ValidFrom.
func NewTable(rows []Unit) (*Table, error) {
	t := &Table{rows: make(map[string][]Unit)}
	for _, u := range rows {
		t.rows[u.Code] = append(t.rows[u.Code], u)
	}
	for _, rs := range t.rows {
		sort.Slice(rs, func(i, j int) bool { return rs[i].ValidFrom < rs[j].ValidFrom })
		for i := 1; i < len(rs); i++ {
			if rs[i].ValidFrom == rs[i-1].ValidFrom {
				return nil, fmt.Errorf("%w: two rows of %q from %s", ErrBadUnit, rs[i].Code, rs[i].ValidFrom)
			}
		}
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// With returns a copy of t with u added, or replacing the row of the same
// code and ValidFrom. It fails with ErrBadUnit if the result is inconsistent.
func (t *Table) With(u Unit) (*Table, error) {
	n := &Table{rows: make(map[string][]Unit, len(t.rows)+1)}
	for c, rs := range t.rows {
		n.rows[c] = rs // shared: rows slices are never mutated in place
	}
	rs := append([]Unit(nil), t.rows[u.Code]...)
	replaced := false
	for i := range rs {
		if rs[i].ValidFrom == u.ValidFrom {
			rs[i] = u
			replaced = true
		}
	}
	if !replaced {
		rs = append(rs, u)
		sort.Slice(rs, func(i, j int) bool { return rs[i].ValidFrom < rs[j].ValidFrom })
	}
	n.rows[u.Code] = rs
	if err := n.check(); err != nil {
		return nil, err
	}
	return n, nil
}

func (t *Table) check() error {
	for code, rs := range t.rows {
		for i, u := range rs {
			switch {
			case u.Code == "" || u.Code != code || u.Name == "":
				return fmt.Errorf("%w: %q: empty code or name", ErrBadUnit, code)
			case u.Kind == subsidyv1.UnitKind_UNIT_KIND_UNSPECIFIED || subsidyv1.UnitKind_name[int32(u.Kind)] == "":
				return fmt.Errorf("%w: %q: unknown kind %d", ErrBadUnit, code, u.Kind)
			case !u.ValidFrom.Valid() || (!u.ValidTo.IsZero() && (!u.ValidTo.Valid() || u.ValidTo < u.ValidFrom)):
				return fmt.Errorf("%w: %q: validity %s..%s", ErrBadUnit, code, u.ValidFrom, u.ValidTo)
			case i > 0 && (rs[i-1].ValidTo.IsZero() || rs[i-1].ValidTo >= u.ValidFrom):
				return fmt.Errorf("%w: %q: versions from %s and %s overlap", ErrBadUnit, code, rs[i-1].ValidFrom, u.ValidFrom)
			case u.Successor == code:
				return fmt.Errorf("%w: %q is its own successor", ErrBadUnit, code)
			case u.Successor != "" && t.rows[u.Successor] == nil:
				return fmt.Errorf("%w: %q: successor %q unknown", ErrBadUnit, code, u.Successor)
			}
		}
	}
	for code := range t.rows {
		if _, err := t.current(code); err != nil {
			return err
		}
	}
	return nil
}

// Lookup returns the rows of code, oldest first.
func (t *Table) Lookup(code string) ([]Unit, bool) {
	rs, ok := t.rows[code]
	return append([]Unit(nil), rs...), ok
}

// UnitAsOf returns the row of code in force on d: ErrUnknownUnit if no row
// has the code, ErrNotInForce if none is in force on d.
func (t *Table) UnitAsOf(code string, d Date) (Unit, error) {
	rs, ok := t.rows[code]
	if !ok {
		return Unit{}, fmt.Errorf("%w: %q", ErrUnknownUnit, code)
	}
	for _, u := range rs {
		if u.InForce(d) {
			return u, nil
		}
	}
	return Unit{}, fmt.Errorf("%w: %q on %s", ErrNotInForce, code, d)
}

// RollUp returns the unit that answers for code on d: the row of code in
// force on d, or, if code was abolished by d, its successor's row in force on
// d (following successors). History recorded with an old unit thus maps to
// the unit in force on the date asked.
func (t *Table) RollUp(code string, d Date) (Unit, error) {
	for hops := 0; hops <= len(t.rows); hops++ {
		rs, ok := t.rows[code]
		if !ok {
			return Unit{}, fmt.Errorf("%w: %q", ErrUnknownUnit, code)
		}
		var last Unit
		for _, u := range rs {
			if u.InForce(d) {
				return u, nil
			}
			if u.ValidFrom <= d {
				last = u
			}
		}
		if last.Successor == "" || last.ValidTo.IsZero() || last.ValidTo >= d {
			return Unit{}, fmt.Errorf("%w: %q on %s", ErrNotInForce, code, d)
		}
		code = last.Successor
	}
	return Unit{}, fmt.Errorf("%w: successor cycle at %q", ErrBadUnit, code)
}

// Current returns the unit that answers for code today: its latest row if it
// is still in force, else its successor's, following successors to a unit
// with no end date. Today's dashboards roll old units up with it.
func (t *Table) Current(code string) (Unit, error) { return t.current(code) }

func (t *Table) current(code string) (Unit, error) {
	start := code
	for hops := 0; hops <= len(t.rows); hops++ {
		rs, ok := t.rows[code]
		if !ok {
			return Unit{}, fmt.Errorf("%w: %q", ErrUnknownUnit, code)
		}
		last := rs[len(rs)-1]
		if last.ValidTo.IsZero() || last.Successor == "" {
			return last, nil
		}
		code = last.Successor
	}
	return Unit{}, fmt.Errorf("%w: successor cycle from %q", ErrBadUnit, start)
}

// Units returns every row, ordered by code then ValidFrom.
func (t *Table) Units() []Unit {
	codes := make([]string, 0, len(t.rows))
	for c := range t.rows {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var out []Unit
	for _, c := range codes {
		out = append(out, t.rows[c]...)
	}
	return out
}

// InForce returns the rows in force on d, ordered by code.
func (t *Table) InForce(d Date) []Unit {
	var out []Unit
	for _, u := range t.Units() {
		if u.InForce(d) {
			out = append(out, u)
		}
	}
	return out
}

// UnitAsOf, Current and Units answer from the seed table.
func UnitAsOf(code string, d Date) (Unit, error) { return seed.UnitAsOf(code, d) }

// Current rolls code up to its current successor in the seed table.
func Current(code string) (Unit, error) { return seed.Current(code) }

// Units returns the rows of the seed table.
func Units() []Unit { return seed.Units() }
