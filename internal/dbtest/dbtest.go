// Package dbtest gives tests their own fresh databases.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver

	"github.com/imap-mcp/imap-mcp/store"
)

// AdminURLEnv names the variable holding a PostgreSQL URL allowed to create
// and drop databases.
const AdminURLEnv = "IMAP_MCP_TEST_POSTGRES_URL"

// DefaultAdminURL is used when AdminURLEnv is unset: the machine's local
// server with trust authentication.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL creates a new empty PostgreSQL database for the test, drops it
// when the test ends, and returns its URL. An unreachable server fails the
// test: it is never skipped.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(AdminURLEnv)
	if admin == "" {
		admin = DefaultAdminURL
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Fatalf("dbtest: open %s: %v", AdminURLEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "imapmcp_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		db.Close()
		tb.Fatalf("dbtest: create database (is PostgreSQL running? set %s): %v", AdminURLEnv, err)
	}
	tb.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("dbtest: parse %s: %v", AdminURLEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// SQLitePath returns a database file path in a fresh temporary directory.
func SQLitePath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "imap-mcp.db")
}

// SQLiteStore opens a migrated store on a fresh SQLite database, closed
// when the test ends.
func SQLiteStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), store.Options{SQLitePath: SQLitePath(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return st
}
