package ledgerctl

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/events/codec"
	"github.com/cqhrss/subsidyledger/events/person"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// subjects finds, in the fixture, a subsidised trainee, their entitlement,
// a payment order of it and an institution.
type subjects struct {
	personKey, entitlement, payment, institution string
}

func findSubjects(t *testing.T, evs []events.RecordedEvent) subjects {
	t.Helper()
	var s subjects
	for _, e := range evs {
		m, err := codec.Payload(e.EventData)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *subsidyv1.InstitutionRegistered:
			if s.institution == "" {
				s.institution = m.GetInstitutionId()
			}
		case *subsidyv1.PaymentOrdered:
			if s.payment == "" {
				s.payment = e.ID.String()
				s.entitlement = m.GetEntitlementId()
			}
		}
	}
	for _, e := range evs {
		if e.ID.String() == s.entitlement {
			m, _ := codec.Payload(e.EventData)
			s.personKey = m.(*subsidyv1.SubsidyEntitled).GetPersonKey()
		}
	}
	if s.personKey == "" || s.payment == "" || s.institution == "" {
		t.Fatalf("the fixture lacks a paid entitlement or an institution: %+v", s)
	}
	return s
}

type auditOut struct {
	Timeline string     `json:"timeline"`
	Events   []auditRow `json:"events"`
}

func auditJSON(t *testing.T, store string, env []string, args ...string) auditOut {
	t.Helper()
	out, _, err := run(t, "", env, append([]string{"audit", "--store", store, "--format", "json"}, args...)...)
	if err != nil {
		t.Fatalf("audit %v: %v", args, err)
	}
	var a auditOut
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("audit %v: not JSON: %v\n%s", args, err, out)
	}
	for _, r := range a.Events {
		if !r.HashOK || !r.LinkOK {
			t.Errorf("audit %v: event at %d: hash_ok %v link_ok %v", args, r.Position, r.HashOK, r.LinkOK)
		}
	}
	return a
}

func TestAudit(t *testing.T) {
	f := getFixture(t)
	store := copyStore(t)
	s := findSubjects(t, readEvents(t, f.path))

	trainee := auditJSON(t, store, nil, "--person-key", s.personKey)
	var types []string
	entitledAt := -1
	for i, r := range trainee.Events {
		types = append(types, r.Type)
		if r.Type == "subsidy.v1.SubsidyEntitled" {
			entitledAt = i
		}
		if i > 0 && r.Position <= trainee.Events[i-1].Position {
			t.Errorf("trainee timeline out of order at %d", i)
		}
	}
	if len(trainee.Events) < 6 || entitledAt < 0 || trainee.Events[0].Type != "subsidy.v1.TraineeRegistered" {
		t.Fatalf("trainee timeline: %v", types)
	}
	ent := trainee.Events[entitledAt]
	if ent.RuleSet == "" || len(ent.Checks) == 0 || len(ent.Reasons) == 0 || ent.Source == "" || ent.Occurred == nil {
		t.Errorf("the entitlement shows no decision: %+v", ent)
	}

	entitlement := auditJSON(t, store, nil, "--entitlement", s.entitlement)
	if entitlement.Events[0].EventID != s.entitlement || len(entitlement.Events) < 3 {
		t.Errorf("entitlement timeline starts with %s, %d events", entitlement.Events[0].Type, len(entitlement.Events))
	}
	payment := auditJSON(t, store, nil, "--payment", s.payment)
	if payment.Events[0].EventID != s.payment {
		t.Errorf("payment timeline starts with %+v", payment.Events[0])
	}
	inst := auditJSON(t, store, nil, "--institution", s.institution)
	if inst.Events[0].Type != "subsidy.v1.InstitutionRegistered" || len(inst.Events) < 5 {
		t.Errorf("institution timeline: %d events, first %s", len(inst.Events), inst.Events[0].Type)
	}
	stream := auditJSON(t, store, nil, "--stream", "trainee-"+s.personKey)
	if len(stream.Events) > len(trainee.Events) || len(stream.Events) == 0 {
		t.Errorf("stream timeline has %d events, the trainee's %d", len(stream.Events), len(trainee.Events))
	}

	// Table and CSV.
	out, _, err := run(t, "", nil, "audit", "--store", store, "--person-key", s.personKey)
	if err != nil || !strings.Contains(out, "POSITION") || !strings.Contains(out, "SubsidyEntitled") || strings.Contains(out, "BROKEN") {
		t.Errorf("table: %v\n%s", err, out)
	}
	out, _, err = run(t, "", nil, "audit", "--store", store, "--person-key", s.personKey, "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != len(trainee.Events)+1 || recs[0][0] != "position" || recs[1][13] != "true" {
		t.Errorf("csv: %v, %d rows\n%s", err, len(recs), out)
	}

	if _, _, err := run(t, "", nil, "audit", "--store", store, "--person-key", strings.Repeat("0", 64)); exitCode(err) != 1 {
		t.Errorf("audit of an unknown person: %v; want exit 1", err)
	}
	if _, _, err := run(t, "", nil, "audit", "--store", store); exitCode(err) != 2 {
		t.Errorf("audit without a selector: %v; want exit 2", err)
	}
}

func TestAuditByIDNumber(t *testing.T) {
	// gen's trainees have no ID numbers; key one with a test secret and
	// look for its (absent) timeline: the number is hashed, never shown.
	store := copyStore(t)
	const id = "11010519491231002X"
	secret := "a person-key secret of at least 32 bytes"
	_, stderr, err := run(t, "", []string{"LEDGER_PERSON_KEY=" + secret}, "audit", "--store", store, "--id-number", id)
	k, _ := person.NewKeyer([]byte(secret))
	pk, _ := k.Key(id)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), pk) || strings.Contains(err.Error()+stderr, id) {
		t.Errorf("audit --id-number: %v (stderr %q); want no events of the person key %s and never the number", err, stderr, pk)
	}
	if _, _, err := run(t, "", nil, "audit", "--store", store, "--id-number", id); exitCode(err) != 2 || !strings.Contains(err.Error(), "LEDGER_PERSON_KEY") {
		t.Errorf("audit --id-number without a secret: %v", err)
	}
	_, _, err = run(t, "", []string{"LEDGER_PERSON_KEY=" + secret}, "audit", "--store", store, "--id-number", "110105194912310021")
	if exitCode(err) != 2 || strings.Contains(err.Error(), "110105194912310021") {
		t.Errorf("audit with an invalid ID number: %v; want a usage error that masks it", err)
	}
}
