//go:build benchprofile

package main

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
)

// Built with the benchprofile tag (bench/profile.sh), the server writes a
// CPU profile to IMAP_MCP_CPUPROFILE and an allocation profile next to it
// (".allocs"), covering its first IMAP_MCP_PROFILE_SECONDS (default 22)
// or until SIGTERM. Release builds have none of this.
func init() {
	path := os.Getenv("IMAP_MCP_CPUPROFILE")
	if path == "" {
		return
	}
	seconds, err := strconv.Atoi(os.Getenv("IMAP_MCP_PROFILE_SECONDS"))
	if err != nil || seconds <= 0 {
		seconds = 22
	}
	f, err := os.Create(path)
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		select {
		case <-stop:
		case <-time.After(time.Duration(seconds) * time.Second):
		}
		pprof.StopCPUProfile()
		_ = f.Close()
		if m, err := os.Create(path + ".allocs"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(m, 0)
			_ = m.Close()
		}
	}()
}
