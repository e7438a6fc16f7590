package ledgerd

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	old := cgroupRoot
	defer func() { cgroupRoot = old }()
	// write makes a control-group tree with file f holding v.
	write := func(f, v string) {
		cgroupRoot = t.TempDir()
		p := filepath.Join(cgroupRoot, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const v1 = "memory/memory.limit_in_bytes"
	for _, tc := range []struct {
		name, file, value, flag, gomemlimit string
		want                                int64
	}{
		{name: "v2 limit", file: "memory.max", value: "4294967296", want: 3865470566}, // 90% of 4 GiB
		{name: "v2 none", file: "memory.max", value: "max"},
		{name: "v1 limit", file: v1, value: "2147483648", want: 1932735283},
		{name: "v1 none", file: v1, value: "9223372036854771712"},
		{name: "no control group", file: "unrelated", value: "1"},
		{name: "GOMEMLIMIT stands", file: "memory.max", value: "4294967296", gomemlimit: "3GiB"},
		{name: "off", file: "memory.max", value: "4294967296", flag: "off"},
		{name: "a size", file: "memory.max", value: "max", flag: "3GiB", want: 3 << 30},
	} {
		write(tc.file, tc.value)
		args := []string{"--demo"}
		if tc.flag != "" {
			args = append(args, "--memory-limit", tc.flag)
		}
		c, err := ParseConfig(args, func(k string) string {
			if k == "GOMEMLIMIT" {
				return tc.gomemlimit
			}
			return ""
		}, io.Discard)
		if err != nil || c.MemoryLimit != tc.want {
			t.Errorf("%s: MemoryLimit %d, %v; want %d", tc.name, c.MemoryLimit, err, tc.want)
		}
	}
	for _, bad := range []string{"lots", "10MiB", "-1GiB"} {
		_, err := ParseConfig([]string{"--demo", "--memory-limit", bad}, func(string) string { return "" }, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("--memory-limit %s: %v; want a ConfigError", bad, err)
		}
	}
}
