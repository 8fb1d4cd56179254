package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	mcplib "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/imap-mcp/imap-mcp/mail"
)

// TestEncodeOnceAnswersAsTheLibrary: every kind of result reads the same
// to a client whether the library encodes it or encodeOnce does, and mail
// text that imitates the stand-in stays text.
func TestEncodeOnceAnswersAsTheLibrary(t *testing.T) {
	type page struct {
		Folder string   `json:"folder"`
		UIDs   []uint32 `json:"uids"`
		Note   string   `json:"note,omitempty"`
	}
	imitation := `"content":[{"type":"text","text":"imcp-result:00000000000000000000000000000000"}]`
	results := map[string]*mcplib.CallToolResult{
		"text":       mcplib.NewToolResultText("INBOX: 2 message(s) <b>&</b> \u2028 \x01"),
		"structured": mcplib.NewToolResultStructured(page{Folder: "INBOX", UIDs: []uint32{3, 2}}, "two messages"),
		"error":      mcplib.NewToolResultError("Unknown account_id \"x\"."),
		"image":      {Content: []mcplib.Content{mcplib.NewImageContent("aGVsbG8=", "image/png"), mcplib.NewTextContent("a picture")}},
		"empty":      {},
		"imitation":  mcplib.NewToolResultStructured(page{Folder: imitation, Note: "imcp-result:"}, imitation),
		"meta":       {Result: mcplib.Result{Meta: &mcplib.Meta{AdditionalFields: map[string]any{"k": "v"}}}, Content: []mcplib.Content{mcplib.NewTextContent("m")}},
	}
	for name, res := range results {
		t.Run(name, func(t *testing.T) {
			tool := func(context.Context, mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
				c := *res
				return &c, nil
			}
			lib, once := answers(t, false, toolCall, tool), answers(t, true, toolCall, tool)
			if !reflect.DeepEqual(lib, once) {
				t.Fatalf("the library answers\n%v\nencodeOnce answers\n%v", lib, once)
			}
		})
	}
	// A tool that notifies while it runs gets an SSE answer: the
	// notification, then the result, in place. Whether the library still
	// has the notification to send when the tool returns is up to its
	// goroutines, so either shape is accepted; the wait makes the
	// streamed one the rule.
	t.Run("streamed", func(t *testing.T) {
		tool := func(ctx context.Context, _ mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
			if err := server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": "info", "data": "working"}); err != nil {
				return nil, err
			}
			time.Sleep(50 * time.Millisecond)
			return mcplib.NewToolResultStructured(page{Folder: "INBOX"}, "streamed text"), nil
		}
		want := answers(t, false, toolCall, func(context.Context, mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
			return mcplib.NewToolResultStructured(page{Folder: "INBOX"}, "streamed text"), nil
		})
		streamed := 0
		for range 10 {
			got := answers(t, true, toolCall, tool)
			if !reflect.DeepEqual(got[len(got)-1], want[0]) {
				t.Fatalf("result %v, want %v", got[len(got)-1], want[0])
			}
			for _, m := range got[:len(got)-1] {
				if n, _ := m.(map[string]any); n["method"] != "notifications/message" {
					t.Fatalf("before the result: %v", m)
				}
			}
			if len(got) == 2 {
				streamed++
			}
		}
		if streamed == 0 {
			t.Fatal("no answer was streamed")
		}
	})
}

const toolCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"tool","arguments":{}}}`

// answers serves one tool through the library's stateless HTTP handler,
// with encodeOnce and spliceResults when once is set, posts body and
// returns the JSON-RPC messages of the answer: one for a JSON answer, one
// per event for an SSE answer.
func answers(t *testing.T, once bool, body string, tool server.ToolHandlerFunc) []any {
	t.Helper()
	opts := []server.ServerOption{server.WithToolCapabilities(false)}
	if once {
		opts = append(opts, server.WithToolHandlerMiddleware(encodeOnce))
	}
	ms := server.NewMCPServer("t", "1", opts...)
	ms.AddTool(mcplib.NewTool("tool"), tool)
	var h http.Handler = server.NewStreamableHTTPServer(ms, server.WithStateLess(true), server.WithDisableStreaming(true))
	if once {
		h = spliceResults(h)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	req, _ := http.NewRequest("POST", ts.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var msgs []string
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "application/json":
		msgs = []string{string(data)}
	case "text/event-stream":
		for _, line := range strings.Split(string(data), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				msgs = append(msgs, d)
			}
		}
	default:
		t.Fatalf("Content-Type %q: %s", ct, data)
	}
	var out []any
	for _, m := range msgs {
		var v any
		if err := json.Unmarshal([]byte(m), &v); err != nil {
			t.Fatalf("%v: %s", err, m)
		}
		out = append(out, v)
	}
	return out
}

// TestSpliceRefusesAStandInItCannotPlace: when the library's answer holds
// the reference in a form other than the stand-in's, the client gets an
// error, never the reference in place of its result.
func TestSpliceRefusesAStandInItCannotPlace(t *testing.T) {
	h := spliceResults(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slot := r.Context().Value(resultSlotKey{}).(*resultSlot)
		slot.fill([]byte(`"content":[{"type":"text","text":"the result"}]`))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"text":"`+resultRefPrefix+slot.nonce+`","type":"text"}]}}`)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), resultRefPrefix) || !strings.Contains(rec.Body.String(), `"code":-32603`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// BenchmarkResultEncoding: a 50-message list_messages answer written by
// the library, by encodeOnce (its own encoding plus the library's answer
// around the stand-in), and by the fast path's writeResult, whose hand
// encoding is measured against encoding/json's of the same members.
//
//	go test -run '^$' -bench ResultEncoding -count 5 ./mcp/
func BenchmarkResultEncoding(b *testing.B) {
	page := &mail.Page{Total: 10000}
	for i := range 50 {
		page.Messages = append(page.Messages, mail.Summary{UID: uint32(10000 - i), Flags: []string{`\Seen`}, Size: 4000,
			Header: mail.Header{Subject: "Re: Code review: auth refactor", From: `"O'Brien, Siobhán" <siobhan@example.com>`,
				To: []string{"Sink <sink@example.test>"}, Date: time.Now(), DateOK: true}})
	}
	out, text, _ := messagePage("INBOX", page)
	res := mcplib.NewToolResultStructured(out, text)
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			_ = json.NewEncoder(io.Discard).Encode(mcplib.JSONRPCResponse{JSONRPC: "2.0", ID: mcplib.NewRequestId(1), Result: res})
		}
	})
	b.Run("once", func(b *testing.B) {
		slot := &resultSlot{nonce: "0123456789abcdef0123456789abcdef"}
		for b.Loop() {
			body, err := encodeResult(res)
			if err != nil {
				b.Fatal(err)
			}
			slot.body = body // one goroutine
			var held bytes.Buffer
			_ = json.NewEncoder(&held).Encode(mcplib.JSONRPCResponse{JSONRPC: "2.0", ID: mcplib.NewRequestId(1),
				Result: mcplib.NewToolResultText(resultRefPrefix + slot.nonce)})
			if parts, ok := slot.splice(held.Bytes()); !ok || len(parts) != 3 {
				b.Fatal("not spliced")
			}
		}
	})
	var buf bytes.Buffer
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			buf.Reset()
			if err := writeResult(&buf, res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast-encoding-json", func(b *testing.B) {
		for b.Loop() {
			buf.Reset()
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(res.Content)
			_ = enc.Encode(res.StructuredContent)
		}
	})
}
