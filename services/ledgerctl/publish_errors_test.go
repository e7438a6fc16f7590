package ledgerctl

import (
	"strings"
	"testing"

	"github.com/cqhrss/subsidyledger/events/person"
)

// TestPublishErrorsQuoteNoIDNumber: ledgerctl publish's errors (on stderr,
// in job logs) quote the input with its ID numbers masked (found by review:
// protojson's errors quoted them).
func TestPublishErrorsQuoteNoIDNumber(t *testing.T) {
	const id = "50010119900101107X"
	keyer := func() (*person.Keyer, error) { return person.NewKeyer([]byte(strings.Repeat("k", 32))) }
	for _, in := range []string{
		`{"fact": "enrolment.trainee_registered", "payload": {"maskedName": 500101199001011002}}`,
		`{"fact": "enrolment.trainee_registered", "payload": {"` + id + `": "x"}}`,
		`{"fact": "enrolment.` + id + `", "payload": {}}`,
		`{"fact": "enrolment.trainee_registered", "payload": {"id_number": "` + id + `", "person_key": "x"}, "msg_id": 5}`,
	} {
		_, err := readFacts(strings.NewReader(in), "f.json", "subsidy.in", keyer)
		if err == nil || strings.Contains(err.Error(), id) || strings.Contains(err.Error(), "500101199001011002") {
			t.Errorf("readFacts(%s): %v; want an error without the plain ID number", in, err)
		}
	}
}
