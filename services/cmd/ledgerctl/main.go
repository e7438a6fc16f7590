// Command ledgerctl is the subsidy ledger's command-line tool for
// supervisors and operators: verify a store, audit timelines, check
// checkpoints and proofs, make keys, publish and simulate facts. See
// package ledgerctl.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cqhrss/subsidyledger/services/ledgerctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := ledgerctl.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	code := 1
	var ee *ledgerctl.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "ledgerctl:", msg)
	}
	os.Exit(code)
}
