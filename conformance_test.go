package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/internal/nodetools"
)

// conformanceScenarios are the suite's server scenarios that apply to a
// server without prompts, resources, logging or sampling.
var conformanceScenarios = []string{"server-initialize", "ping", "tools-list", "dns-rebinding-protection"}

// TestConformanceSuite runs the official MCP conformance suite
// (@modelcontextprotocol/conformance, pinned in internal/nodetools)
// against a running server, through a proxy that adds a real bearer
// token: the suite sends none.
func TestConformanceSuite(t *testing.T) {
	tools := nodetools.Install(t)
	inst := start(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "local-secret"})
	_, tok, _ := authorizeLocal(t, inst.url, "http://localhost:0")
	target, _ := neturl.Parse(inst.url)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the suite's Host header reaches the server as sent
		r.Out.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}})
	defer proxy.Close()
	for _, sc := range conformanceScenarios {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, tools.Node, tools.Conformance, "server", "--url", proxy.URL+"/api/mcp", "--scenario", sc).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("scenario %s failed: %v\n%s", sc, err, out)
			continue
		}
		t.Logf("scenario %s: %s", sc, lastLines(string(out), 3))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// TestMCPRemote runs mcp-remote 0.15.1, the bridge Claude Desktop uses,
// as a person would: it registers itself, the person signs in and
// consents in a browser, it redeems the code, and a tool call over its
// stdio reaches the server.
func TestMCPRemote(t *testing.T) {
	tools := nodetools.Install(t)
	base := startOnFreePort(t, map[string]string{"DATA_DIR": t.TempDir(), "LOCAL_ADMIN_PASSWORD": "local-secret"})
	// No browser here: mcp-remote's attempt to open one finds this no-op,
	// and the test reads the address from its log instead.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.Node, tools.MCPRemote, base+"/api/mcp", port, "--allow-http")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "MCP_REMOTE_CONFIG_DIR="+t.TempDir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()

	var logs strings.Builder
	authURL := ""
	lines := bufio.NewScanner(stderr)
	for authURL == "" && lines.Scan() {
		logs.WriteString(lines.Text() + "\n")
		if m := regexp.MustCompile(`https?://\S+/authorize\?\S+`).FindString(lines.Text()); m != "" {
			authURL = m
		}
	}
	if authURL == "" {
		t.Fatalf("mcp-remote printed no authorization URL:\n%s", logs.String())
	}
	go func() { // keep draining its log
		for lines.Scan() {
		}
	}()
	cb := consentLocal(t, browser(t), base, authURL, base, "MCP CLI Proxy", "localhost:")
	if resp, body := send(t, http.DefaultClient, "GET", cb.String(), nil); resp.StatusCode != 200 {
		t.Fatalf("mcp-remote's callback = %d %s", resp.StatusCode, body)
	}

	out := bufio.NewReader(stdout)
	rpc := func(msg string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(stdin, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(msg, `"id"`) {
			return nil
		}
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("mcp-remote: %v", err)
		}
		var resp map[string]any
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatalf("mcp-remote answered %q", line)
		}
		return resp
	}
	init := rpc(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"claude-desktop-test","version":"1"}}}`)
	if info, _ := init["result"].(map[string]any)["serverInfo"].(map[string]any); info["name"] != "imap-mcp" {
		t.Fatalf("initialize through mcp-remote: %v", init)
	}
	rpc(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	res := rpc(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_accounts","arguments":{}}}`)
	result, _ := res["result"].(map[string]any)
	if result == nil || result["isError"] == true || !strings.Contains(fmt.Sprint(result["content"]), "No mail account") {
		t.Fatalf("list_accounts through mcp-remote: %v", res)
	}
}
