package ledgerctl

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/projections/quota"
)

func TestExport(t *testing.T) {
	store := copyStore(t)
	for _, v := range []string{"notice", "quota", "institutions", "fund", "anomalies", "trainees"} {
		args := []string{"export", v, "--store", store}
		if v == "notice" {
			args = append(args, "--on", "all")
		}
		out, _, err := run(t, "", nil, args...)
		if err != nil {
			t.Fatalf("export %s: %v", v, err)
		}
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		min := 2
		if v == "notice" || v == "anomalies" {
			min = 1 // the fixture's year is over: nothing on notice, nothing flagged
		}
		if err != nil || len(recs) < min {
			t.Errorf("export %s: %v, %d rows\n%.400s", v, err, len(recs), out)
		}
	}
	// The notice is masked: no person key, names and ID numbers masked.
	out, _, _ := run(t, "", nil, "export", "notice", "--store", store, "--on", "all")
	if strings.Contains(out, "person_key") || !strings.Contains(out, "masked_name,masked_id") {
		t.Errorf("the public notice shows person keys:\n%.300s", out)
	}
	if _, _, err := run(t, "", nil, "export", "nothing", "--store", store); exitCode(err) != 2 {
		t.Errorf("export nothing: %v", err)
	}
	// --bom: the byte-order mark Excel needs, once, before the header.
	out, _, err := run(t, "", nil, "export", "institutions", "--store", store, "--bom")
	if err != nil || !strings.HasPrefix(out, "\ufeffinstitution_id,") {
		t.Errorf("export institutions --bom: %v, starts %.40q", err, out)
	}
	if _, _, err := run(t, "", nil, "export", "institutions", "--store", store, "--bom", "--format", "json"); exitCode(err) != 2 {
		t.Errorf("export --bom --format json: %v; want a usage error", err)
	}
}

func TestReplay(t *testing.T) {
	f := getFixture(t)
	store := copyStore(t)
	dir := t.TempDir()
	half := f.size / 2
	if _, _, err := run(t, "", nil, "replay", "--projection", "quota", "--store", store, "--out", filepath.Join(dir, "all.snap")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", nil, "replay", "--projection", "quota", "--store", store, "--as-of", strconv.FormatInt(half, 10), "--out", filepath.Join(dir, "half.snap")); err != nil {
		t.Fatal(err)
	}
	all, _ := os.ReadFile(filepath.Join(dir, "all.snap"))
	halfSnap, _ := os.ReadFile(filepath.Join(dir, "half.snap"))
	if len(all) == 0 || bytes.Equal(all, halfSnap) {
		t.Fatalf("snapshots: %d and %d bytes, equal %v", len(all), len(halfSnap), bytes.Equal(all, halfSnap))
	}
	// A snapshot restores into the projection.
	m := quota.Factory()
	if err := m.Restore(bytes.NewReader(halfSnap)); err != nil {
		t.Fatalf("restoring the replayed snapshot: %v", err)
	}
	if got := m.(*quota.Model).Position(); got == 0 || int64(got) > half {
		t.Errorf("replayed as of %d; the snapshot is at %d", half, got)
	}
	out, _, err := run(t, "", nil, "replay", "--projection", "fund", "--store", store, "--format", "json", "--as-of", strconv.FormatInt(half, 10))
	if err != nil || !json.Valid([]byte(out)) {
		t.Errorf("replay --format json: %v\n%.300s", err, out)
	}
	if _, _, err := run(t, "", nil, "replay", "--projection", "nothing", "--store", store); exitCode(err) != 2 {
		t.Errorf("replay of no such projection: %v", err)
	}
}
