package rules_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/cqhrss/subsidyledger/events/rules"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
)

// TestMain checks, after a full run, that every reason code of the
// catalogue that Decide can give was asserted by some test (the
// content-type and size codes are facts.Decode's and tested there; codes
// given only by the intake service are its to test).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code != 0 || flag.Lookup("test.run").Value.String() != "" || testing.Short() {
		os.Exit(code)
	}
	missing := 0
	for _, r := range rules.Reasons() {
		if r.By == "ingest" || r.Code == subsidyv1.ReasonCode_REASON_CODE_UNSUPPORTED_CONTENT_TYPE || r.Code == subsidyv1.ReasonCode_REASON_CODE_OVERSIZED {
			continue // given by the intake service or facts.Decode only, tested there
		}
		if _, ok := covered.Load(r.Code); !ok {
			fmt.Fprintf(os.Stderr, "no test asserts reason code %s\n", r.Code)
			missing++
		}
	}
	if missing > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}
