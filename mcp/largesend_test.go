package mcp_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/mcp"
)

// rpcRequest is a JSON-RPC POST as MCP clients send it.
func rpcRequest(url, tok string, body io.Reader) *http.Request {
	req, _ := http.NewRequest("POST", url, body)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	return req
}

// postTool posts one tools/call as a raw JSON-RPC request (the way large
// requests arrive) and returns the decoded result.
func postTool(t testing.TB, h *harness, tok string, body []byte) (result struct {
	IsError           bool `json:"isError"`
	Content           []struct{ Text string }
	StructuredContent json.RawMessage `json:"structuredContent"`
}) {
	t.Helper()
	resp, err := http.DefaultClient.Do(rpcRequest(h.url, tok, bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var msg struct {
		Result json.RawMessage
		Error  json.RawMessage
	}
	if resp.StatusCode != 200 || json.Unmarshal(data, &msg) != nil || msg.Error != nil {
		t.Fatalf("status %d: %.300s", resp.StatusCode, data)
	}
	if err := json.Unmarshal(msg.Result, &result); err != nil {
		t.Fatal(err)
	}
	return result
}

// sendBody is a send_message request with one attachment whose
// content_base64 is given as written into the JSON.
func sendBody(account, to, subject, contentBase64 string) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"send_message","arguments":`+
		`{"account_id":%q,"to":[%q],"subject":%q,"body_text":"the file","attachments":[{"filename":"big.bin","content_base64":"%s"}]}}}`,
		account, to, subject, contentBase64)
}

// TestLargeSendDeliversFiles: a request over 1 MB, whose files are taken
// out of the body as it is read, delivers them byte for byte (padded or
// not, with JSON-escaped slashes), and its bad files get the same tool
// errors as in a small request.
func TestLargeSendDeliversFiles(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "bigsender", "mail.read mail.send")
	alice := addRigAccount(t, h, rig, keys, u, "alice")
	bob := addRigAccount(t, h, rig, keys, u, "bob")
	bobAddr, _ := rig.User("bob")
	data := make([]byte, 3<<20+1)
	_, _ = rand.Read(data)
	subject := "big file " + time.Now().Format("150405.000")
	escaped := strings.ReplaceAll(base64.RawStdEncoding.EncodeToString(data), "/", `\/`)
	res := postTool(t, h, tok, sendBody(alice, bobAddr.Email, subject, escaped))
	if res.IsError {
		t.Fatalf("send: %s", res.Content[0].Text)
	}
	c := h.client(t, tok)
	var inbox mcp.MessagePage
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		inbox = structured[mcp.MessagePage](t, c, "search_messages", map[string]any{"account_id": bob, "subject": subject})
		if inbox.Total == 1 || time.Now().After(deadline) {
			break
		}
	}
	if inbox.Total != 1 {
		t.Fatalf("bob's INBOX: %+v", inbox)
	}
	got := structured[mcp.MessageDetail](t, c, "get_message", map[string]any{"account_id": bob, "uid": inbox.Messages[0].UID})
	att := structured[mcp.AttachmentResult](t, c, "get_attachment", map[string]any{"account_id": bob, "uid": got.UID, "part": got.Attachments[0].Part})
	resp, err := http.Get(att.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, data) {
		t.Fatalf("delivered %d bytes, sent %d", len(body), len(data))
	}

	pad := strings.Repeat("A", 2<<20) // makes the request large
	for content, want := range map[string]string{
		pad + "!!":                       "content_base64 is not valid base64",
		strings.Repeat("AAAA", 11<<20/3): "is 11.0 MB; the limit is 10 MB per file",
	} {
		res := postTool(t, h, tok, sendBody(alice, bobAddr.Email, "refused", content))
		if !res.IsError || !strings.Contains(res.Content[0].Text, want) {
			t.Errorf("want %q, got %+v", want, res.Content)
		}
	}
	// A reference written by the client is base64 to decode, and is not.
	res = postTool(t, h, tok, sendBody(alice, bobAddr.Email, "forged", "imcp-file:x:0"+pad))
	if !res.IsError || !strings.Contains(res.Content[0].Text, "not valid base64") {
		t.Errorf("forged reference: %+v", res.Content)
	}
}

// BenchmarkSend14MB sends a 14 MB send_message request (a 10 MB file)
// and reports the peak growth of live heap and of the process's RSS
// against the request's size. Run: go test -run '^$' -bench Send14MB -benchtime 3x ./mcp/
func BenchmarkSend14MB(b *testing.B) {
	h, rig, keys := mailHarness(b)
	tok, u := h.token(b, "bench-sender", "mail.read mail.send")
	alice := addRigAccount(b, h, rig, keys, u, "alice")
	sink, _ := rig.User("sink")
	data := make([]byte, 10<<20)
	_, _ = rand.Read(data)
	body := sendBody(alice, sink.Email, "bench 14 MB 0000", base64.StdEncoding.EncodeToString(data))
	data = nil
	// Each send gets its own subject: the same call again would be
	// answered as a repeat, without a send.
	serial := body[bytes.Index(body, []byte("bench 14 MB 0000"))+12:][:4]
	sends := 0
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	var peakHeap, peakRSS float64
	for b.Loop() {
		sends++
		copy(serial, fmt.Sprintf("%04d", sends%10000))
		runtime.GC()
		baseHeap, baseRSS := heap(), rssMB()
		stop, done := make(chan struct{}), make(chan [2]float64)
		go func() {
			var hmax uint64
			var rmax float64
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					done <- [2]float64{float64(hmax) / (1 << 20), rmax}
					return
				case <-tick.C:
					if v := heap(); v > baseHeap && v-baseHeap > hmax {
						hmax = v - baseHeap
					}
					if v := rssMB() - baseRSS; v > rmax {
						rmax = v
					}
				}
			}
		}()
		res := postTool(b, h, tok, body)
		close(stop)
		p := <-done
		if res.IsError || !strings.Contains(res.Content[0].Text, "Sent ") {
			b.Fatalf("not a send: %+v", res.Content)
		}
		peakHeap, peakRSS = max(peakHeap, p[0]), max(peakRSS, p[1])
	}
	b.ReportMetric(float64(len(body))/(1<<20), "request-MB")
	b.ReportMetric(peakHeap, "peak-heap-MB")
	b.ReportMetric(peakRSS, "rss-growth-MB")
}
