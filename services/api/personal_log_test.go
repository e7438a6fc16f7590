package api

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqhrss/subsidyledger/events/person"
	"github.com/cqhrss/subsidyledger/services/internal/logbuf"
)

// TestPersonalDataLogNamesNoIDNumber: a caller who puts an ID number where
// the person key belongs is logged with it masked (found by review: the
// access log wrote the path value as it came).
func TestPersonalDataLogNamesNoIDNumber(t *testing.T) {
	var logs logbuf.Buffer
	keyer, _ := person.NewKeyer([]byte("api test: the person-key secret, 32 bytes or more"))
	h := New(Config{Projections: fx.set, Store: fx.store, Registerer: prometheus.NewRegistry(), Keyer: keyer, Vault: fx.vault,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const id = "50010119900101107X"
	for _, method := range []string{"GET", "DELETE"} {
		req := httptest.NewRequest(method, "/v1/trainees/"+id+"/personal-data", nil)
		req.Header.Set(ScopeHeader, "municipal")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		t.Logf("%s -> %d", method, w.Code)
	}
	if s := logs.String(); strings.Contains(s, id) || strings.Count(s, "personal data access") != 2 {
		t.Errorf("log holds the plain ID number:\n%s", s)
	}
}
