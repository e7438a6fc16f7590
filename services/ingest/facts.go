package ingest

import (
	"google.golang.org/protobuf/proto"

	"github.com/cqhrss/subsidyledger/events/facts"
	subsidyv1 "github.com/cqhrss/subsidyledger/proto/gen/subsidy/v1"
	"github.com/cqhrss/subsidyledger/services/natsbus"
)

func factKind(s natsbus.Subjects, subject string) (facts.Kind, bool) {
	return facts.BySubject(s.InboundPrefix(), subject)
}

// decodeFact decodes a payload; a non-zero reason code says
// why it cannot become a fact.
func decodeFact(k facts.Kind, contentType string, payload []byte) (proto.Message, subsidyv1.ReasonCode, string) {
	// Schema checks (facts.Validate) are the first thing the rules' Decide
	// does; they are not repeated here.
	m, err := facts.Decode(k, contentType, payload)
	if err != nil {
		code := facts.ReasonOf(err)
		if code == subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED {
			code = subsidyv1.ReasonCode_REASON_CODE_SCHEMA_VIOLATION
		}
		return nil, code, err.Error()
	}
	return m, subsidyv1.ReasonCode_REASON_CODE_UNSPECIFIED, ""
}
