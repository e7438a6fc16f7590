// Command ledgerd is the subsidy ledger service. See the README for its
// flags and environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cqhrss/subsidyledger/services/ledgerd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ledgerd.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		var ce *ledgerd.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, "ledgerd:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "ledgerd:", err)
		os.Exit(1)
	}
}
