package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/cqhrss/subsidyledger/events/refdata"
)

// ruleSetFile is a RuleSet as a file names it (ledgerd --rule-set): every
// parameter by name, dates as YYYY-MM-DD. Pointers tell a missing field
// from a zero one: a rule set file names every parameter, so that what a
// decision was made under can be read from the file alone, with no default
// filled in from the build that read it.
type ruleSetFile struct {
	Version                 *string   `json:"version"`
	YearlyCap               *int      `json:"yearly_cap"`
	SubsidisedAttempts      *int      `json:"subsidised_attempts"`
	NoticeWorkingDays       *int      `json:"notice_working_days"`
	PaymentWorkingDays      *int      `json:"payment_working_days"`
	CalendarThrough         *int      `json:"calendar_through"`
	Holidays                *[]string `json:"holidays"`
	WorkingWeekends         *[]string `json:"working_weekends"`
	PassRateThresholdBP     *int      `json:"pass_rate_threshold_bp"`
	PassRateWindow          *int      `json:"pass_rate_window"`
	LowerAfterHigher        *bool     `json:"lower_after_higher"`
	TargetMeasure           *string   `json:"target_measure"`
	CertificateSpikeFactor  *int      `json:"certificate_spike_factor"`
	CertificateSpikeMonths  *int      `json:"certificate_spike_months"`
	CertificateSpikeMinimum *int      `json:"certificate_spike_minimum"`
	SharedAccountThreshold  *int      `json:"shared_account_threshold"`
}

// maxRuleSetFile bounds what ReadRuleSet reads: a rule set with every
// holiday of a century is a few tens of kilobytes.
const maxRuleSetFile = 1 << 20

// ErrRuleSetFile reports a rule set file that cannot be used; the error
// says which field and why.
var ErrRuleSetFile = errors.New("rules: rule set file")

// ReadRuleSet reads a rule set written by WriteJSON (or by hand in the same
// form): a JSON object naming every parameter, nothing else, and valid
// (Validate).
func ReadRuleSet(r io.Reader) (RuleSet, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxRuleSetFile+1))
	if err != nil {
		return RuleSet{}, fmt.Errorf("%w: %v", ErrRuleSetFile, err)
	}
	if len(b) > maxRuleSetFile {
		return RuleSet{}, fmt.Errorf("%w: larger than %d bytes", ErrRuleSetFile, maxRuleSetFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f ruleSetFile
	if err := dec.Decode(&f); err != nil {
		return RuleSet{}, fmt.Errorf("%w: %v", ErrRuleSetFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return RuleSet{}, fmt.Errorf("%w: more than one JSON object", ErrRuleSetFile)
	}
	var missing []string
	v := reflect.ValueOf(f)
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return RuleSet{}, fmt.Errorf("%w: missing %v (a rule set file names every parameter: start from ledgerctl rules)", ErrRuleSetFile, missing)
	}
	rs := RuleSet{
		Version:                 *f.Version,
		YearlyCap:               *f.YearlyCap,
		SubsidisedAttempts:      *f.SubsidisedAttempts,
		NoticeWorkingDays:       *f.NoticeWorkingDays,
		PaymentWorkingDays:      *f.PaymentWorkingDays,
		CalendarThrough:         *f.CalendarThrough,
		PassRateThresholdBP:     *f.PassRateThresholdBP,
		PassRateWindow:          *f.PassRateWindow,
		LowerAfterHigher:        *f.LowerAfterHigher,
		TargetMeasure:           *f.TargetMeasure,
		CertificateSpikeFactor:  *f.CertificateSpikeFactor,
		CertificateSpikeMonths:  *f.CertificateSpikeMonths,
		CertificateSpikeMinimum: *f.CertificateSpikeMinimum,
		SharedAccountThreshold:  *f.SharedAccountThreshold,
		Behaviour:               CurrentBehaviour,
	}
	if rs.Holidays, err = parseDates("holidays", *f.Holidays); err != nil {
		return RuleSet{}, err
	}
	if rs.WorkingWeekends, err = parseDates("working_weekends", *f.WorkingWeekends); err != nil {
		return RuleSet{}, err
	}
	if err := rs.Validate(); err != nil {
		return RuleSet{}, fmt.Errorf("%w: %w", ErrRuleSetFile, err)
	}
	return rs, nil
}

func parseDates(field string, ss []string) ([]refdata.Date, error) {
	out := make([]refdata.Date, 0, len(ss))
	for _, s := range ss {
		d, err := refdata.ParseDate(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q is not a date (YYYY-MM-DD)", ErrRuleSetFile, field, s)
		}
		out = append(out, d)
	}
	return out, nil
}

// WriteJSON writes rs in the form ReadRuleSet reads, dates sorted.
func (rs RuleSet) WriteJSON(w io.Writer) error {
	dates := func(ds []refdata.Date) *[]string {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		out := make([]string, 0, len(ds))
		for _, d := range slices.Compact(ds) {
			out = append(out, d.String())
		}
		return &out
	}
	f := ruleSetFile{
		Version:                 &rs.Version,
		YearlyCap:               &rs.YearlyCap,
		SubsidisedAttempts:      &rs.SubsidisedAttempts,
		NoticeWorkingDays:       &rs.NoticeWorkingDays,
		PaymentWorkingDays:      &rs.PaymentWorkingDays,
		CalendarThrough:         &rs.CalendarThrough,
		Holidays:                dates(rs.Holidays),
		WorkingWeekends:         dates(rs.WorkingWeekends),
		PassRateThresholdBP:     &rs.PassRateThresholdBP,
		PassRateWindow:          &rs.PassRateWindow,
		LowerAfterHigher:        &rs.LowerAfterHigher,
		TargetMeasure:           &rs.TargetMeasure,
		CertificateSpikeFactor:  &rs.CertificateSpikeFactor,
		CertificateSpikeMonths:  &rs.CertificateSpikeMonths,
		CertificateSpikeMinimum: &rs.CertificateSpikeMinimum,
		SharedAccountThreshold:  &rs.SharedAccountThreshold,
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(f)
}
