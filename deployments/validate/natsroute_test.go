package validate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// natsRoutePassword is the variable the cluster block of nats/cluster*.conf
// reads (cluster.authorization); the route URLs carry it too.
const natsRoutePassword = "NATS_ROUTE_PASSWORD"

// natsRouteVars are the variables each cluster configuration reads its route
// URLs from (nats-server does not expand variables inside a string), in the
// order of the nodes: compose's nats-1..3, the StatefulSet's nats-0..2.
var natsRouteVars = map[string][]string{
	"cluster.conf":     {"NATS_ROUTE_1", "NATS_ROUTE_2", "NATS_ROUTE_3"},
	"cluster.k8s.conf": {"NATS_ROUTE_0", "NATS_ROUTE_1", "NATS_ROUTE_2"},
}

// TestNATSRouteAuth runs the repository's cluster configurations for real:
// two nats-servers loaded from the file (with the route password and the
// users' passwords set as the deployments set them) form a cluster, and a
// third server that solicits them without the route credentials, with a
// wrong password or with the user only, is refused as a route: the members log the refusal and
// never list it, a message published on a member reaches the other member
// but never a subscriber on the intruder (the auditor read
// subsidy.pii.enrolment that way), and a fact published anonymously on the
// intruder reaches no member.
func TestNATSRouteAuth(t *testing.T) {
	for _, file := range slices.Sorted(maps.Keys(natsRouteVars)) {
		t.Run(file, func(t *testing.T) {
			testRouteAuth(t, filepath.Join(deployments, "nats", file), natsRouteVars[file])
		})
	}
}

func testRouteAuth(t *testing.T, file string, vars []string) {
	const pw = "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4e5f60718" // hex, as README asks
	t.Setenv(natsRoutePassword, pw)
	for _, v := range natsPasswords {
		t.Setenv(v, "pw-"+v)
	}
	// Two members and a configured node that is down (a third member's
	// port, nothing listening): the cluster forms with two of three.
	ports := []int{freePort(t), freePort(t), freePort(t)}
	for i, v := range vars {
		t.Setenv(v, fmt.Sprintf("nats-route://route:%s@127.0.0.1:%d", pw, ports[i]))
	}
	a := startMember(t, file, "member-a", ports[0])
	b := startMember(t, file, "member-b", ports[1])
	clusterName := a.srv.ClusterName()

	// The members form a route with each other, both ways.
	waitFor(t, 10*time.Second, "the members to form a route", func() bool {
		return hasRoute(a.srv, b.srv.ID()) && hasRoute(b.srv, a.srv.ID())
	})

	// The members' clients: the enrolment service publishes personal data
	// on member A, ledgerd reads it on member B (through the route).
	enrolment := dialNATS(t, a.srv, "enrolment-svc", "pw-ENROLMENT_NATS_PASSWORD")
	ledgerd := dialNATS(t, b.srv, "ledgerd", "pw-LEDGERD_NATS_PASSWORD")
	ledgerd.sub(t, "subsidy.pii.enrolment")
	ledgerd.sub(t, "subsidy.in.>")

	for _, intruder := range []struct{ name, userinfo string }{
		{"no-credentials", ""},
		{"wrong-password", "route:" + strings.Repeat("0", len(pw)) + "@"},
		{"user-only", "route@"},
	} {
		t.Run(intruder.name, func(t *testing.T) {
			refusedA, refusedB := a.log.refusals(), b.log.refusals()
			urls := fmt.Sprintf("nats-route://%s127.0.0.1:%d,nats-route://%s127.0.0.1:%d", intruder.userinfo, ports[0], intruder.userinfo, ports[1])
			rogue := startServer(t, &natsserver.Options{
				ServerName: "rogue-" + intruder.name,
				Host:       "127.0.0.1", Port: -1, NoSigs: true,
				Cluster: natsserver.ClusterOpts{Name: clusterName, Host: "127.0.0.1", Port: -1},
				Routes:  natsserver.RoutesFromStr(urls),
			})
			// Anyone on the intruder: no user, no permissions.
			spy := dialNATS(t, rogue.srv, "", "")
			spy.sub(t, "subsidy.pii.enrolment")
			spy.sub(t, ">")

			// Personal data published on A reaches B's ledgerd; facts
			// published by the intruder's anonymous client reach nobody.
			// Publish until B has one (B's interest crosses the route
			// asynchronously), then keep publishing and watching.
			payload := `{"trainee":"` + intruder.name + `"}`
			fact := `{"year":2026,"target":1}`
			publish := func() {
				enrolment.pub(t, "subsidy.pii.enrolment", payload)
				spy.pub(t, "subsidy.in.bureau.annual_target_set", fact)
			}
			waitFor(t, 5*time.Second, "a message published on member A to reach member B over the route", func() bool {
				publish()
				return ledgerd.received("subsidy.pii.enrolment", payload) > 0
			})
			// Watch for a while (the intruder retries its routes every
			// second): neither member ever lists it as a route.
			listed := map[string]bool{}
			for watch := time.Now().Add(1500 * time.Millisecond); time.Now().Before(watch); time.Sleep(50 * time.Millisecond) {
				publish()
				for _, s := range []*natsserver.Server{a.srv, b.srv} {
					if hasRoute(s, rogue.srv.ID()) && !listed[s.Name()] {
						listed[s.Name()] = true
						t.Errorf("%s lists the intruder %s as a route", s.Name(), rogue.srv.Name())
					}
				}
			}
			enrolment.ping(t)
			spy.ping(t)
			ledgerd.ping(t)
			if got := spy.all(); len(got) > 0 {
				t.Errorf("the intruder's anonymous client received %d messages from the cluster: %v", len(got), got[:min(len(got), 5)])
			}
			if n := ledgerd.received("subsidy.in.bureau.annual_target_set", fact); n > 0 {
				t.Errorf("%d facts published anonymously on the intruder reached member B", n)
			}
			if !hasRoute(a.srv, b.srv.ID()) || !hasRoute(b.srv, a.srv.ID()) {
				t.Error("the members lost their route")
			}
			// And it was for its credentials that each refused it. (The
			// intruder itself may hold a member as a route for the moment
			// between the member's INFO and its refusal of the CONNECT; what
			// counts is that no member takes it, hence no message.)
			if !eventually(5*time.Second, func() bool { return a.log.refusals() > refusedA && b.log.refusals() > refusedB }) {
				t.Errorf("no authentication error for the intruder's route: %d at A, %d at B", a.log.refusals()-refusedA, b.log.refusals()-refusedB)
			}
			if !t.Failed() {
				t.Logf("refused %d times by A, %d by B; the members' route carried the message, the intruder saw nothing",
					a.log.refusals()-refusedA, b.log.refusals()-refusedB)
			}
		})
	}
}

type testServer struct {
	srv *natsserver.Server
	log *routeLog
}

// startMember loads the cluster configuration as a node would (SERVER_NAME
// from the environment) and moves its listeners to the loopback: the client
// port at random, the route port at routePort, monitoring off, JetStream in a
// temporary directory.
func startMember(t *testing.T, file, name string, routePort int) *testServer {
	t.Helper()
	t.Setenv("SERVER_NAME", name)
	opts, err := natsserver.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if opts.Cluster.Username == "" || opts.Cluster.Password == "" {
		t.Fatalf("%s: the cluster block has no authorization", file)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", 0
	opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePort
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	return startServer(t, opts)
}

func startServer(t *testing.T, opts *natsserver.Options) *testServer {
	t.Helper()
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", opts.ServerName, err)
	}
	l := &routeLog{}
	s.SetLogger(l, false, false)
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("%s did not start: %v", opts.ServerName, l.errors())
	}
	return &testServer{s, l}
}

// hasRoute: s has a route to the server with that ID.
func hasRoute(s *natsserver.Server, id string) bool {
	rz, err := s.Routez(nil)
	if err != nil {
		return false
	}
	for _, r := range rz.Routes {
		if r.RemoteID == id {
			return true
		}
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	if !eventually(d, ok) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// eventually: ok holds within d (polled every 20 ms).
func eventually(d time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// routeLog is a server's logger: it counts the route connections the server
// refused for their credentials and keeps the errors.
type routeLog struct {
	mu      sync.Mutex
	refused int
	errs    []string
}

func (l *routeLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, msg)
	// A route connection's log prefix has "rid:"; the refusal is
	// ErrAuthentication (client.authViolation).
	if strings.Contains(msg, " - rid:") && strings.Contains(msg, natsserver.ErrAuthentication.Error()) {
		l.refused++
	}
}
func (l *routeLog) Noticef(string, ...any) {}
func (l *routeLog) Warnf(string, ...any)   {}
func (l *routeLog) Fatalf(format string, v ...any) {
	l.Errorf("fatal: "+format, v...)
}
func (l *routeLog) Debugf(string, ...any) {}
func (l *routeLog) Tracef(string, ...any) {}

func (l *routeLog) refusals() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

func (l *routeLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// natsClient speaks the NATS client protocol over TCP: enough to CONNECT
// with a user, SUB, PUB and receive MSGs (no client library is a dependency
// of this module).
type natsClient struct {
	conn  net.Conn
	wmu   sync.Mutex
	sids  int
	pongs chan struct{}
	errs  chan string
	mu    sync.Mutex
	msgs  [][2]string // subject, payload
}

func dialNATS(t *testing.T, s *natsserver.Server, user, pass string) *natsClient {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &natsClient{conn: conn, pongs: make(chan struct{}, 16), errs: make(chan string, 16)}
	t.Cleanup(func() { conn.Close() })
	go c.read()
	// echo off: a client's own messages do not count.
	connect := map[string]any{"verbose": false, "pedantic": false, "echo": false, "protocol": 1, "headers": false, "name": "validate"}
	if user != "" {
		connect["user"], connect["pass"] = user, pass
	}
	b, _ := json.Marshal(connect)
	c.write(t, "CONNECT "+string(b)+"\r\n")
	c.ping(t)
	return c
}

func (c *natsClient) read() {
	r := bufio.NewReader(c.conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "MSG "):
			f := strings.Fields(line) // MSG subject sid [reply] size
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, [2]string{f[1], string(buf[:n])})
			c.mu.Unlock()
		case line == "PING":
			c.wmu.Lock()
			c.conn.Write([]byte("PONG\r\n"))
			c.wmu.Unlock()
		case line == "PONG":
			c.pongs <- struct{}{}
		case strings.HasPrefix(line, "-ERR"):
			select {
			case c.errs <- line:
			default:
			}
		}
	}
}

func (c *natsClient) write(t *testing.T, s string) {
	t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// ping waits for the server to have processed everything sent before.
func (c *natsClient) ping(t *testing.T) {
	t.Helper()
	c.write(t, "PING\r\n")
	select {
	case <-c.pongs:
	case e := <-c.errs:
		t.Fatalf("NATS: %s", e)
	case <-time.After(5 * time.Second):
		t.Fatal("NATS: no PONG")
	}
}

func (c *natsClient) sub(t *testing.T, subject string) {
	t.Helper()
	c.sids++
	c.write(t, fmt.Sprintf("SUB %s %d\r\n", subject, c.sids))
	c.ping(t)
}

func (c *natsClient) pub(t *testing.T, subject, payload string) {
	t.Helper()
	c.write(t, fmt.Sprintf("PUB %s %d\r\n%s\r\n", subject, len(payload), payload))
}

// received: the messages on subject (with that payload, unless it is "")
// received so far.
func (c *natsClient) received(subject, payload string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if m[0] == subject && (payload == "" || m[1] == payload) {
			n++
		}
	}
	return n
}

// all: the subjects of every message received so far.
func (c *natsClient) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		out = append(out, m[0])
	}
	return out
}
