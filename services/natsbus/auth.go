package natsbus

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
)

// Roles a NATS user may have on the ledger's server.
const (
	// RoleLedger is ledgerd itself: everything but deleting or purging a
	// stream.
	RoleLedger = "ledgerd"
	// RoleOperator may do anything, including deleting and purging streams.
	RoleOperator = "operator"
	// RoleReporting reads the outbound feed and the projections' change feed.
	RoleReporting = "reporting"
)

// Sources are the publishing services; each is also a role that may publish
// only its own facts (<prefix>.in.<source>.>) and read its outcomes.
var Sources = []string{"bureau", "district", "enrolment", "evaluation", "payment"}

// RejectionStream names the log stream a rejection of a message from
// source goes to: "rejection-<source>" for one of Sources, else
// "rejection-unknown". A subject's token is the publisher's to choose, so
// it does not name a stream by itself: one too long for the store was
// refused there, and the message was handed back forever (found by
// review), and each new token made a stream.
func RejectionStream(source string) string {
	if slices.Contains(Sources, source) {
		return "rejection-" + source
	}
	return "rejection-unknown"
}

// User is one NATS user of the ledger's embedded server.
type User struct {
	Name string `json:"user"`
	// Password in plain text or as a bcrypt hash ("$2a$..."), which the
	// server compares with bcrypt.
	Password string `json:"password"`
	Role     string `json:"role"`
}

// Inboxes. A client receives replies (JetStream's acknowledgements, pull
// consumers' messages, request replies) on subjects under its inbox
// prefix. Each user may subscribe only under its own, _INBOX.<user>, and
// must connect with it (nats.CustomInboxPrefix(natsbus.InboxPrefix(user));
// the nats CLI: --inbox-prefix _INBOX.<user>), so that no user can read
// what is delivered to another: with _INBOX.> allowed to all, any user could
// read the facts and personal data JetStream delivers to ledgerd. ledgerd
// uses LedgerInbox, outside _INBOX, whichever user it connects as.
const LedgerInbox = "_LEDGER_INBOX"

// InboxPrefix is the inbox prefix user must connect with.
func InboxPrefix(user string) string { return "_INBOX." + user }

// ValidUserName: a user name is one subject token (its inbox prefix is
// _INBOX.<user>): letters, digits, '-' and '_'.
func ValidUserName(n string) bool {
	if n == "" {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// UsersFile is the file --nats-users names:
//
//	{"users": [{"user": "enrolment-svc", "password": "$2a$11$...", "role": "enrolment"}, ...]}
type UsersFile struct {
	Users []User `json:"users"`
}

// LoadUsers reads and checks a users file.
func LoadUsers(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("natsbus: users file: %w", err)
	}
	var f UsersFile
	// Strict: a misspelt field would otherwise leave every user out and
	// every service refused, with ledgerd ready.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("natsbus: users file %s: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("natsbus: users file %s: more after its JSON object", path)
	}
	if len(f.Users) == 0 {
		return nil, fmt.Errorf(`natsbus: users file %s names no user: no service could publish (want {"users": [{"user": ..., "password": ..., "role": ...}, ...]})`, path)
	}
	seen := map[string]bool{}
	for i, u := range f.Users {
		switch {
		case u.Name == "" || u.Password == "":
			return nil, fmt.Errorf("natsbus: users file %s: user %d needs a user name and a password", path, i+1)
		case !ValidUserName(u.Name):
			return nil, fmt.Errorf("natsbus: users file %s: user name %q: use letters, digits, '-' and '_' only (it is a subject token: the user's inbox is %s.>)", path, u.Name, InboxPrefix("<user>"))
		case seen[u.Name]:
			return nil, fmt.Errorf("natsbus: users file %s: user %q appears twice", path, u.Name)
		case !validRole(u.Role):
			return nil, fmt.Errorf("natsbus: users file %s: user %q has role %q; want one of %v", path, u.Name, u.Role, roles())
		}
		seen[u.Name] = true
	}
	return f.Users, nil
}

func roles() []string {
	return append([]string{RoleLedger, RoleOperator, RoleReporting}, Sources...)
}

func validRole(r string) bool { return slices.Contains(roles(), r) }

// PIISources are the sources that may publish plain personal data
// (<prefix>.pii.<source>) for the vault.
var PIISources = []string{"enrolment"}

// Permissions returns what user, of role, may publish and subscribe to in
// its account (AccountOf; each user its own inbox only: see LedgerInbox).
// Nobody but an operator may delete or purge a stream; ledgerd may delete
// single messages only from SUBSIDY_PII (its secure delete of stored
// personal data), and the other streams deny it anyway. A reporting user
// reads the feed's stream through FeedAPIPrefix with its own durable
// consumer, which ledgerd makes and names after it
// (StreamOptions.FeedConsumers): info, next, ack, and reset (to read again
// from any stream sequence). It may create no consumer: a consumer's
// deliver subject, which permissions cannot see, could send the feed to
// another reporting user's consumer's pull or reset subject.
func (s Subjects) Permissions(user, role string) *server.Permissions {
	inbox := InboxPrefix(user) + ".>"
	switch role {
	case RoleOperator:
		return nil
	case RoleLedger:
		var deny []string
		for _, api := range []string{"$JS.API", FeedAPIPrefix} {
			deny = append(deny, api+".STREAM.DELETE.>", api+".STREAM.PURGE.>")
		}
		deny = append(deny, "$JS.API.STREAM.MSG.DELETE."+InboundStream, "$JS.API.STREAM.MSG.DELETE."+OutcomeStream,
			"$JS.API.STREAM.MSG.DELETE."+FeedStream, FeedAPIPrefix+".STREAM.MSG.DELETE."+FeedStream)
		return &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: deny}}
	case RoleReporting:
		api, own := FeedAPIPrefix+".", FeedStream+"."+user
		return &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				api + "STREAM.INFO." + FeedStream,
				api + "CONSUMER.INFO." + own, api + "CONSUMER.MSG.NEXT." + own, api + "CONSUMER.RESET." + own,
				"$JS.ACK." + own + ".>",
			}},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox, s.Prefix + ".feed.>", s.Prefix + ".projection.>"}},
		}
	default: // a source
		pub := []string{s.Prefix + ".in." + role + ".>"}
		if slices.Contains(PIISources, role) {
			pub = append(pub, s.PII(role))
		}
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: []string{inbox, s.Prefix + ".outcome." + role + ".>"}},
		}
	}
}

// serverUsers turns users into the server's, each in its account
// (AccountOf, of accounts), adding ledgerd's own in-process user with a
// random password, which it returns.
func serverUsers(subj Subjects, users []User, accounts map[string]*server.Account) ([]*server.User, string, string) {
	var out []*server.User
	for _, u := range users {
		out = append(out, &server.User{Username: u.Name, Password: u.Password, Permissions: subj.Permissions(u.Name, u.Role), Account: accounts[AccountOf(u.Name, u.Role)]})
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	name, pass := "ledgerd-internal", hex.EncodeToString(b[:])
	out = append(out, &server.User{Username: name, Password: pass, Permissions: subj.Permissions(name, RoleLedger), Account: accounts[LedgerAccount]})
	return out, name, pass
}
