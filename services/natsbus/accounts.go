package natsbus

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Accounts. With users (--nats-users, or the deployments' nats/auth.conf),
// the ledger's streams live in NATS accounts of their own, and the
// services and reporting users in others that import only what they may
// use. A NATS server sends a reply, a JetStream acknowledgement or a push
// consumer's deliveries to whatever subject the requester names, in the
// account where the subject is served; in one shared account any user
// with a JetStream right could so make the server publish on a subject a
// ledger stream captures (SUBSIDY_OUTCOMES stored it, session 18's
// security review). Across accounts a reply goes back to the requester's
// account only, and an import carries messages one way only.
//
//	LEDGER     SUBSIDY_IN, SUBSIDY_OUTCOMES, SUBSIDY_PII; ledgerd and the operators.
//	           Exports the inbound and personal-data subjects (services),
//	           the outcomes, the feed and the projections' changes
//	           (streams: the live subjects as ledgerd publishes them).
//	FEED       SUBSIDY_FEED alone, and no user. ledgerd publishes the feed
//	           and manages the stream and the reporting users' consumers
//	           through imports (the JetStream API under FeedAPIPrefix).
//	           It exports the feed's subjects as a service only: a message
//	           that reaches an account through a service import goes to
//	           the subscribers there (the stream) but not on to that
//	           account's stream exports, so the live feed comes from
//	           LEDGER, where ledgerd publishes it.
//	SOURCE_<ROLE>  one account for each source (SourceAccount: the users of
//	           role payment in SOURCE_PAYMENT, ...): it publishes its own
//	           facts (acknowledged through the import) and reads its own
//	           outcomes. One account for all sources let a source name
//	           another's outcome subject as the reply subject of its fact,
//	           and JetStream's acknowledgement arrived there, where the
//	           other listens.
//	REPORTING_<user>  one account for each reporting user
//	           (ReportingAccount): the feed's stream through FeedAPIPrefix
//	           (stream info; its own durable consumer, which ledgerd makes:
//	           info, next, reset, ack), the feed and the changes live. In
//	           one account for all, a reporting user's pull or reset request
//	           naming a live subject as its reply subject had JetStream
//	           replay stored events there, to every other reporting user
//	           listening; no permission restricts a reply subject.
const (
	LedgerAccount = "LEDGER"
	FeedAccount   = "FEED"
	// FeedAPIPrefix is the JetStream API of the FEED account as LEDGER and
	// the reporting users' accounts import it: the JetStream domain "FEED"
	// in the clients' terms (nats.go: jetstream.NewWithAPIPrefix(nc,
	// FeedAPIPrefix) or jetstream.NewWithDomain(nc, "FEED"); the nats CLI:
	// --js-domain FEED).
	FeedAPIPrefix = "$JS.FEED.API"
)

// ReportingAccount is the account of reporting user user, e.g.
// REPORTING_warehouse.
func ReportingAccount(user string) string { return "REPORTING_" + user }

// SourceAccount is the account of the users of source role, e.g.
// SOURCE_PAYMENT.
func SourceAccount(role string) string { return "SOURCE_" + strings.ToUpper(role) }

// AccountOf is the account of user, of role.
func AccountOf(user, role string) string {
	switch role {
	case RoleLedger, RoleOperator:
		return LedgerAccount
	case RoleReporting:
		return ReportingAccount(user)
	}
	return SourceAccount(role)
}

// AccountsConfig is the accounts block of a nats-server configuration,
// without users (the embedded server adds them; nats/auth.conf of the
// deployments lists them in the same accounts): what each account holds,
// exports and imports, with an account for each of reporters (the
// reporting users). JetStream is enabled in LEDGER and FEED only.
func (s Subjects) AccountsConfig(reporters []string) string {
	p := s.Prefix
	feedAPI := func(sub string) string {
		return fmt.Sprintf("      {service: {account: %s, subject: %q}, to: %q}\n", FeedAccount, "$JS.API."+sub, FeedAPIPrefix+"."+sub)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "accounts: {\n  %s: {\n    jetstream: enabled\n    exports: [\n", LedgerAccount)
	fmt.Fprintf(&b, "      {service: %q}\n      {service: %q}\n      {stream: %q}\n      {stream: %q}\n      {stream: %q}\n    ]\n", p+".in.>", p+".pii.>", p+".outcome.>", p+".feed.>", p+".projection.>")
	fmt.Fprintf(&b, "    imports: [\n      {service: {account: %s, subject: %q}}\n", FeedAccount, p+".feed.>")
	fmt.Fprintf(&b, "      {service: {account: %s, subject: %q}, to: %q}\n", FeedAccount, "$JS.API.>", FeedAPIPrefix+".>")
	fmt.Fprintf(&b, "      {service: {account: %s, subject: %q}}\n    ]\n  }\n", FeedAccount, "$JS.ACK."+FeedStream+".>")
	fmt.Fprintf(&b, "  %s: {\n    jetstream: enabled\n    exports: [\n", FeedAccount)
	fmt.Fprintf(&b, "      {service: %q}\n      {service: %q, response: stream}\n      {service: %q}\n    ]\n  }\n",
		p+".feed.>", "$JS.API.>", "$JS.ACK."+FeedStream+".>")
	for _, src := range Sources {
		fmt.Fprintf(&b, "  %s: {\n    imports: [\n", SourceAccount(src))
		fmt.Fprintf(&b, "      {service: {account: %s, subject: %q}}\n", LedgerAccount, p+".in."+src+".>")
		if slices.Contains(PIISources, src) {
			fmt.Fprintf(&b, "      {service: {account: %s, subject: %q}}\n", LedgerAccount, s.PII(src))
		}
		fmt.Fprintf(&b, "      {stream: {account: %s, subject: %q}}\n    ]\n  }\n", LedgerAccount, p+".outcome."+src+".>")
	}
	for _, user := range reporters {
		own := FeedStream + "." + user
		fmt.Fprintf(&b, "  %q: {\n    imports: [\n", ReportingAccount(user))
		fmt.Fprintf(&b, "      {stream: {account: %s, subject: %q}}\n      {stream: {account: %s, subject: %q}}\n", LedgerAccount, p+".feed.>", LedgerAccount, p+".projection.>")
		for _, sub := range []string{"STREAM.INFO." + FeedStream, "CONSUMER.INFO." + own, "CONSUMER.MSG.NEXT." + own, "CONSUMER.RESET." + own} {
			b.WriteString(feedAPI(sub))
		}
		fmt.Fprintf(&b, "      {service: {account: %s, subject: %q}}\n    ]\n  }\n", FeedAccount, "$JS.ACK."+own+".>")
	}
	b.WriteString("}\n")
	return b.String()
}

// ErrEncryptedStreams: the embedded server's streams are encrypted, and
// their keys are tied to the account they are in (the global one in demo
// mode, LEDGER and FEED with users): start ledgerd as before, with or
// without --nats-users, or move the streams with nats stream backup and
// restore.
var ErrEncryptedStreams = errors.New("natsbus: encrypted JetStream streams cannot move between accounts (their keys derive from the account's name)")

// moveStreams moves the JetStream files of the ledger's streams into the
// accounts the server keeps them in before it starts: into LEDGER and FEED
// when accounts is set (with users), into the global account otherwise
// (demo mode), so that a data directory keeps its streams, their messages
// and consumers when ledgerd is started with or without --nats-users. A
// stream already in its account is left as it is; nothing is overwritten.
// Encrypted streams (a JetStream key, jetstream { key: ... } in
// --nats-config) are not moved: the server derives each stream's key from
// its account's name, so a moved stream could not be read, and its files
// would be lost. StartServer then stops with ErrEncryptedStreams.
func moveStreams(jsDir string, accounts, encrypted bool) error {
	home := func(stream string) string {
		switch {
		case !accounts:
			return "$G"
		case stream == FeedStream:
			return FeedAccount
		}
		return LedgerAccount
	}
	for _, stream := range []string{InboundStream, OutcomeStream, FeedStream, PIIStream} {
		to := filepath.Join(jsDir, home(stream), "streams", stream)
		if _, err := os.Stat(to); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, acc := range []string{"$G", LedgerAccount, FeedAccount} {
			from := filepath.Join(jsDir, acc, "streams", stream)
			if from == to {
				continue
			}
			if _, err := os.Stat(from); err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(from, "meta.key")); encrypted || err == nil {
				return fmt.Errorf("%w: stream %s is in account %s, and these accounts keep it in %s", ErrEncryptedStreams, stream, acc, home(stream))
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
				return err
			}
			if err := os.Rename(from, to); err != nil {
				return fmt.Errorf("natsbus: moving stream %s from account %s to %s: %w", stream, acc, home(stream), err)
			}
			break
		}
	}
	return nil
}
