//go:build unix

package extract

import (
	"syscall"
	"time"
)

// childAddressSpace bounds the child's virtual memory where it can be:
// far above its heap limit (the Go runtime reserves address space ahead
// of use), so that only a runaway allocation meets it.
const childAddressSpace = 4 << 30

// limitSystem makes the kernel end the child after Timeout of CPU time
// (SIGKILL at the hard limit: Go ignores SIGXCPU) and, outside race
// builds (whose shadow memory needs terabytes of address space), refuse
// it memory past childAddressSpace.
func limitSystem() {
	s := uint64(Timeout / time.Second)
	_ = syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: s, Max: s + 1})
	if !raceEnabled {
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: childAddressSpace, Max: childAddressSpace})
	}
}
