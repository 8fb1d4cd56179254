//go:build unix

package extract

import (
	"syscall"
	"time"
)

// limitCPU makes the kernel stop the process after d of CPU time.
func limitCPU(d time.Duration) {
	s := uint64(d / time.Second)
	_ = syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: s, Max: s + 1})
}
