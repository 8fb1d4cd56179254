//go:build !unix

package extract

import "time"

// limitCPU is a no-op where there are no resource limits: the parent's
// timeout still kills the child.
func limitCPU(time.Duration) {}
