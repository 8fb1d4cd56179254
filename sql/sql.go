// Package sql embeds the database migrations, one folder per dialect.
// Migrations are append-only: a shipped file is never edited.
package sql

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var migrations embed.FS

// Migrations returns the migration files of dialect "postgres" or "sqlite".
func Migrations(dialect string) (fs.FS, error) {
	return fs.Sub(migrations, dialect)
}
