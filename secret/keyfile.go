package secret

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreateFile reads a base64 master key from path, or creates the file
// with a new random key (mode 0600) when it does not exist. created reports
// whether the key was generated now. Processes racing to create the file all
// end up with the same key.
func LoadOrCreateFile(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != KeySize {
			return nil, false, fmt.Errorf("secret: %s does not hold a base64 key of %d bytes", path, KeySize)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("secret: read key file: %w", err)
	}
	key = Generate()
	tmp, err := writeTemp(path, key)
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp)
	// A hard link publishes the complete file or fails if one already exists.
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return LoadOrCreateFile(path)
	} else if err != nil {
		return nil, false, fmt.Errorf("secret: create key file: %w", err)
	}
	return key, true, nil
}

// WriteFile replaces the key file at path atomically (mode 0600).
func WriteFile(path string, key []byte) error {
	tmp, err := writeTemp(path, key)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("secret: write key file: %w", err)
	}
	return nil
}

// writeTemp writes key into a new 0600 file beside path and returns its name.
func writeTemp(path string, key []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".master.key-*")
	if err != nil {
		return "", fmt.Errorf("secret: write key file: %w", err)
	}
	_, werr := f.WriteString(Encode(key) + "\n")
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("secret: write key file: %w", err)
	}
	return f.Name(), nil
}

// Encode formats a key as MCP_MASTER_KEY expects it.
func Encode(key []byte) string { return base64.StdEncoding.EncodeToString(key) }
