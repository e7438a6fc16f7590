package natsbus_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cqhrss/subsidyledger/services/natsbus"
)

// authConf is the deployments' NATS accounts and users (included by the
// cluster configurations).
var authConf = filepath.Join("..", "..", "deployments", "nats", "auth.conf")

// deploymentRoles: the role of each user of auth.conf.
var deploymentRoles = map[string]string{
	"ledgerd": natsbus.RoleLedger, "operator": natsbus.RoleOperator, "reporting": natsbus.RoleReporting,
	"bureau-app": "bureau", "district-app": "district", "enrolment-svc": "enrolment", "evaluation-svc": "evaluation", "payment-svc": "payment",
}

// TestDeploymentAccountsAreTheEmbeddedServers: the deployments' auth.conf
// has the embedded server's accounts (the same JetStream, exports and
// imports: natsbus AccountsConfig), and each of its users is in its role's
// account with its role's permissions (Permissions), so the cluster keeps
// the ledger's streams as apart as ledgerd's own server does.
func TestDeploymentAccountsAreTheEmbeddedServers(t *testing.T) {
	for _, v := range []string{"LEDGERD", "OPERATOR", "BUREAU", "DISTRICT", "ENROLMENT", "EVALUATION", "PAYMENT", "REPORTING"} {
		t.Setenv(v+"_NATS_PASSWORD", "pw")
	}
	dep, err := server.ProcessConfigFile(authConf)
	if err != nil {
		t.Fatal(err)
	}
	var reporters []string
	for _, u := range dep.Users {
		if deploymentRoles[u.Username] == natsbus.RoleReporting {
			reporters = append(reporters, u.Username)
		}
	}
	emb := &server.Options{}
	if err := emb.ProcessConfigString(natsbus.DefaultSubjects.AccountsConfig(reporters)); err != nil {
		t.Fatal(err)
	}
	accounts := func(o *server.Options) map[string]string {
		t.Helper()
		o.Port, o.HTTPPort, o.NoLog, o.NoSigs = -1, 0, true, true
		o.JetStream, o.StoreDir = true, t.TempDir()
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		defer s.Shutdown()
		out := map[string]string{}
		names := []string{natsbus.LedgerAccount, natsbus.FeedAccount}
		for _, src := range natsbus.Sources {
			names = append(names, natsbus.SourceAccount(src))
		}
		for _, user := range reporters {
			names = append(names, natsbus.ReportingAccount(user))
		}
		for _, name := range names {
			z, err := s.Accountz(&server.AccountzOptions{Account: name})
			if err != nil || z.Account == nil {
				t.Fatalf("account %s: %v", name, err)
			}
			var lines []string
			for _, e := range z.Account.Exports {
				lines = append(lines, fmt.Sprintf("export %s %s response %s", e.Type, e.Subject, e.ResponseType))
			}
			for _, i := range z.Account.Imports {
				lines = append(lines, fmt.Sprintf("import %s %s from %s as %s", i.Type, i.Subject, i.Account, i.LocalSubject))
			}
			slices.Sort(lines)
			out[name] = fmt.Sprintf("jetstream %v\n%s", z.Account.JetStream, strings.Join(lines, "\n"))
		}
		return out
	}
	want, got := accounts(emb), accounts(dep)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("account %s in auth.conf:\n%s\nthe embedded server's:\n%s", name, got[name], w)
		}
	}
	seen := map[string]bool{}
	for _, u := range dep.Users {
		role, ok := deploymentRoles[u.Username]
		if !ok {
			t.Errorf("auth.conf: user %s has no role here", u.Username)
			continue
		}
		seen[role] = true
		if u.Account == nil || u.Account.Name != natsbus.AccountOf(u.Username, role) {
			t.Errorf("auth.conf: user %s (%s) in account %v; want %s", u.Username, role, u.Account, natsbus.AccountOf(u.Username, role))
		}
		if want := natsbus.DefaultSubjects.Permissions(u.Username, role); !reflect.DeepEqual(u.Permissions, want) {
			t.Errorf("auth.conf: user %s (%s) permissions\n%s\nwant\n%s", u.Username, role, perm(u.Permissions), perm(want))
		}
	}
	for _, role := range append([]string{natsbus.RoleLedger, natsbus.RoleOperator, natsbus.RoleReporting}, natsbus.Sources...) {
		if !seen[role] {
			t.Errorf("auth.conf: no user of role %s", role)
		}
	}
}

func perm(p *server.Permissions) string {
	if p == nil {
		return "all"
	}
	s := ""
	for _, x := range []struct {
		name string
		sp   *server.SubjectPermission
	}{{"publish", p.Publish}, {"subscribe", p.Subscribe}} {
		if x.sp != nil {
			s += fmt.Sprintf("%s allow %v deny %v\n", x.name, x.sp.Allow, x.sp.Deny)
		}
	}
	return s
}
