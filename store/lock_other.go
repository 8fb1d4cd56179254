//go:build !unix

package store

import "context"

// lockFile is a no-op where flock is unavailable: start one process at a
// time on the embedded database there.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }

// tryLockFile is a no-op where flock is unavailable.
func tryLockFile(string, bool) (func(), error) { return func() {}, nil }
