package mailrig

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

var shared struct {
	once sync.Once
	rig  *Rig
	err  error
}

// Shared returns the rig shared by all tests of the test binary, starting
// it on first use. If the rig cannot start, Shared fails tb with the error,
// which includes the daemon log tail; it never skips. Main closes the rig;
// without Main in TestMain the watchdog still removes it when the test
// binary exits, but Close errors go unreported.
func Shared(tb testing.TB) *Rig {
	tb.Helper()
	shared.once.Do(func() { shared.rig, shared.err = Start() })
	if shared.err != nil {
		tb.Fatalf("mailrig: shared rig unavailable: %v", shared.err)
	}
	return shared.rig
}

// Main runs the tests and then closes the shared rig, if one was started.
// It returns the exit code for os.Exit; a failed close turns a zero code
// into 1. Use it as:
//
//	func TestMain(m *testing.M) { os.Exit(mailrig.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.rig == nil {
		return code
	}
	if err := shared.rig.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "mailrig: close shared rig: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
