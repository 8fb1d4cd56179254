package extract

import (
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// limitChild bounds the child's stack (a deeper recursion is a fatal
// error that ends only the child), its heap and, where the system has
// it, its CPU time.
func limitChild() {
	debug.SetMaxStack(childStack)
	debug.SetMemoryLimit(childMemory)
	limitCPU(Timeout)
	go func() {
		var m runtime.MemStats
		for {
			time.Sleep(50 * time.Millisecond)
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > childHeap {
				os.Exit(exitTooBig)
			}
		}
	}()
}
