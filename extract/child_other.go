//go:build !unix

package extract

// limitSystem is a no-op where there are no resource limits: the
// parent's timeout and the heap watchdog still end the child.
func limitSystem() {}
