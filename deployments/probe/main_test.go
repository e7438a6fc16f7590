package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			io.WriteString(w, "ready\n")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "intake: not consuming\n")
	}))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{srv.URL + "/readyz"}, 0},
		{[]string{srv.URL + "/other"}, 1},
		{[]string{"-timeout", "1s", "http://127.0.0.1:1/readyz"}, 1},
		{[]string{}, 2},
		{[]string{"::not a url"}, 2},
	} {
		if got := run(tc.args, io.Discard, io.Discard); got != tc.want {
			t.Errorf("run(%q) = %d; want %d", tc.args, got, tc.want)
		}
	}
}
