//go:build !linux

package main

import "time"

// processCPU and threadCPU are measured on Linux only; elsewhere they are
// zero and the CPU-time rows are left out.
func processCPU() time.Duration { return 0 }
func threadCPU() time.Duration  { return 0 }
