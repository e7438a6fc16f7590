package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// smallSendBuffers accepts connections with a small socket send buffer, so
// that a client that stops reading blocks the server's writes after a few
// tens of kilobytes: with the kernel's defaults (autotuned, up to
// megabytes) much of the fixture's export, about 300 KB, or all of it,
// would be taken by the sockets and the handler would never block.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestTraineeExportStalledClientIsDropped: a client that stops reading a
// streamed trainee export does not hold the handler forever: the export's
// write deadline (ExportTimeout from the start) ends the blocked write and
// the handler aborts (http.ErrAbortHandler: the connection is dropped).
//
// The export runs on a real server and a raw TCP connection, with small
// socket buffers on both ends so that the export (hundreds of kilobytes)
// cannot fit in them: the handler's write blocks once the client stops
// reading, and only the write deadline unblocks it (the context is checked
// between pages, not during a write).
func TestTraineeExportStalledClientIsDropped(t *testing.T) {
	const (
		token         = "export-deadline-test-token"
		exportTimeout = time.Second
		// Generous: the handler should end about exportTimeout after it
		// began; this only bounds the wait when it does not.
		wait = 8 * time.Second
	)
	scope, err := TokenScope([]Token{{SHA256: HashToken(token), Scope: "municipal"}})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Projections: fx.set, Store: fx.store, Scope: scope, ExportTimeout: exportTimeout})

	// done receives what the handler ended with: nil when it returned,
	// else its panic value (re-panicked, for the server to drop the
	// connection as it would in production).
	done := make(chan any, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			done <- p
			if p != nil {
				panic(p)
			}
		}()
		h.ServeHTTP(w, r)
	}))
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Closed before srv.Close (deferred first, run last) so that a handler
	// still blocked (the failure this test looks for) gets an error and
	// srv.Close does not wait for it.
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		// Set after connecting, it still caps what the client's kernel
		// takes in (about 50 KB of the export here, rather than 180 KB).
		_ = tc.SetReadBuffer(4096)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait)) // bounds the reads below, whatever happens
	if _, err := fmt.Fprintf(conn, "GET /v1/trainees?format=csv HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer %s\r\n\r\n", token); err != nil {
		t.Fatal(err)
	}

	// Read a little: the response's head and the first rows (the reader's
	// 4 KiB), then stop reading.
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET /v1/trainees?format=csv = %d %s; want 200 text/csv", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if _, err := br.Peek(1); err != nil {
		t.Fatalf("reading the first rows: %v", err)
	}
	t0 := time.Now()

	select {
	case p := <-done:
		switch {
		case p == nil:
			// The whole export fit in the socket buffers: nothing
			// blocked, so the write deadline went untested (a smaller
			// fixture? larger buffers?).
			t.Fatal("the export to a client that stopped reading ended normally; want it cut short (http.ErrAbortHandler) by its write deadline: did it fit in the socket buffers?")
		case p != http.ErrAbortHandler:
			t.Fatalf("the export to a client that stopped reading panicked with %v; want http.ErrAbortHandler", p)
		}
		t.Logf("handler aborted %v after the client stopped reading", time.Since(t0).Round(time.Millisecond))
	case <-time.After(exportTimeout + wait):
		t.Fatalf("the export to a client that stopped reading still holds its handler %v later (ExportTimeout %v): no write deadline?", time.Since(t0).Round(time.Millisecond), exportTimeout)
	}
}
