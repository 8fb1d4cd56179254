# Everyday tasks. The two that matter most are in README.md:
#   go run .        runs the server on the embedded default
#   ./scripts/test  runs every test (installs Dovecot, Postfix, PostgreSQL when missing)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: run build generate test lint vuln bench

run:
	go run .

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o imap-mcp .

generate:
	go tool templ generate

test:
	./scripts/test

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...
	go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run

vuln:
	go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 ./...

bench:
	./bench/startup.sh
