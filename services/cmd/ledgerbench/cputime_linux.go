package main

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) of every thread of the
// process so far.
func processCPU() time.Duration { return rusage(syscall.RUSAGE_SELF) }

// threadCPU is the CPU time of the calling thread so far; the caller locks
// its goroutine to the thread (runtime.LockOSThread) for the span measured.
func threadCPU() time.Duration { return rusage(syscall.RUSAGE_THREAD) }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
