package ledgerctl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cqhrss/subsidyledger/events/merkle"
)

func cmdKeygen(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "keygen", "[--name ORIGIN] [--out PREFIX]")
	name := f.String("name", merkle.DefaultOrigin, "the log's origin, which names the key (no spaces or '+')")
	out := f.String("out", "", "write the signer key to PREFIX.key (mode 0600) and the verifier key to PREFIX.pub instead of stdout")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := f.noArgs(); err != nil {
		return err
	}
	skey, vkey, err := merkle.GenerateKey(nil, *name)
	if err != nil {
		return usageErrorf("--name %q: %v", *name, err)
	}
	if *out == "" {
		fmt.Fprintf(e.stdout, "signer key (ledgerd's secret: LEDGER_CHECKPOINT_KEY or a key file):\n%s\n\nverifier key (give it to supervisors):\n%s\n", skey, vkey)
		return nil
	}
	for _, p := range []string{*out + ".key", *out + ".pub"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("%s exists; keygen does not overwrite keys", p)
		}
	}
	if err := os.WriteFile(*out+".key", []byte(skey+"\n"), 0o600); err != nil {
		return failf("writing the signer key: %v", err)
	}
	if err := os.WriteFile(*out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return failf("writing the verifier key: %v", err)
	}
	fmt.Fprintf(e.stdout, "signer key:   %s.key (keep it secret; ledgerd signs with it)\nverifier key: %s.pub (%s)\n", *out, *out, vkey)
	return nil
}
