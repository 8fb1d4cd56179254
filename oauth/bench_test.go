package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkBearerCheck measures the bearer check every MCP request pays
// (token lookup and use bookkeeping on SQLite), with parallel clients.
func BenchmarkBearerCheck(b *testing.B) {
	h := newHarness(b, nil)
	conf := publicClient(b, h)
	code, v := codeFor(b, h, conf)
	_, tok := exchange(b, h, conf, code, v)
	at := tok["access_token"].(string)
	srv := h.srv.Bearer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/api/mcp", strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+at)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
