package ledgerd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoot is where the control groups are mounted (a variable for
// tests).
var cgroupRoot = "/sys/fs/cgroup"

// memoryShare is the share of the container's memory limit that
// --memory-limit auto gives the Go runtime: the rest is for what the
// collector does not count (goroutine stacks outside the heap, the bbolt
// files' pages, the kernel's buffers).
const memoryShare = 0.9

// cgroupMemoryLimit returns the memory limit of the process's control
// group, as a container sees it (its own group mounted at cgroupRoot):
// cgroup v2's memory.max, else v1's memory/memory.limit_in_bytes. False
// when there is none ("max", or v1's "no limit", a number near 2^63).
func cgroupMemoryLimit() (int64, bool) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(cgroupRoot, f))
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// autoMemoryLimit is --memory-limit auto: memoryShare of the control
// group's limit, unless GOMEMLIMIT is set (then the runtime's setting
// stands) or there is no limit; zero: leave the runtime alone.
func autoMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	n, ok := cgroupMemoryLimit()
	if !ok {
		return 0
	}
	return int64(float64(n) * memoryShare)
}
