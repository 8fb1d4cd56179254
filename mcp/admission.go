package mcp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/imap-mcp/imap-mcp/oauth"
)

// Admission bounds, applied to an MCP request before its body is read.
const (
	// MaxRequestBytes bounds one MCP request (attachments travel base64
	// in send_message).
	MaxRequestBytes = 32 << 20
	// largeRequest is the size from which a request counts as large; one
	// of unknown size counts as MaxRequestBytes.
	largeRequest = 1 << 20
	// largePerUser bounds one person's large requests in flight.
	largePerUser = 2
	// largeBudget bounds the bytes of all large requests in flight.
	largeBudget = 64 << 20
)

// admission keeps count of the large requests in flight.
type admission struct {
	mu      sync.Mutex
	perUser map[string]int
	bytes   int64
}

// enter admits a request of size bytes from user, or reports false when
// it would exceed largePerUser or largeBudget; release ends it.
func (a *admission) enter(user string, size int64) (release func(), ok bool) {
	if size >= 0 && size < largeRequest {
		return func() {}, true
	}
	if size < 0 || size > MaxRequestBytes {
		size = MaxRequestBytes
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.perUser[user] >= largePerUser || a.bytes+size > largeBudget {
		return nil, false
	}
	a.perUser[user]++
	a.bytes += size
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.perUser[user]--; a.perUser[user] == 0 {
			delete(a.perUser, user)
		}
		a.bytes -= size
	}, true
}

// admit applies the request limits before next reads the body: a body
// over MaxRequestBytes is refused with 413; a large request of a person
// who has spent their tool calls, and any request over their request rate
// or their share of large requests, gets 429 with Retry-After.
func (s *Server) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxRequestBytes {
			refuseTooLarge(w)
			return
		}
		p, _ := oauth.PrincipalFrom(r.Context())
		// A large body is not even read for someone who has spent their
		// calls; a small one is, and gets the tool error a model can act on.
		if wait, spent := s.calls.spent(p.UserID); spent && (r.ContentLength < 0 || r.ContentLength >= largeRequest) {
			refuse(w, http.StatusTooManyRequests, wait, fmt.Sprintf("too many tool calls: the limit is %d a minute", s.o.CallsPerMinute))
			return
		}
		if wait, ok := s.requests.allow(p.UserID); !ok {
			refuse(w, http.StatusTooManyRequests, wait, "too many requests")
			return
		}
		release, ok := s.large.enter(p.UserID, r.ContentLength)
		if !ok {
			refuse(w, http.StatusTooManyRequests, time.Second, "too many large requests at once: wait for the others to finish")
			return
		}
		defer release()
		// Enough buffer for isBatch to peek; the library reads past it.
		body := bufio.NewReaderSize(http.MaxBytesReader(w, r.Body, MaxRequestBytes), 64)
		if isBatch(body) {
			// Valid JSON that the MCP library reports as invalid: say what it is.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"JSON-RPC batches are not supported: send one request per POST"}}`)
			return
		}
		if r.ContentLength < 0 || r.ContentLength >= largeRequest {
			small, files, err := extractFiles(body, maxAttachmentBytes)
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				refuseTooLarge(w)
				return
			case err != nil:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintln(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"request body is not valid JSON"}}`)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), fileTableKey{}, files))
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(small)), int64(len(small))
			next.ServeHTTP(w, r)
			return
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{body, r.Body}
		next.ServeHTTP(w, r)
	})
}

// isBatch reports whether the body, peeked at, is a JSON array.
func isBatch(body *bufio.Reader) bool {
	for i := 1; i <= 64; i++ {
		b, err := body.Peek(i)
		if err != nil {
			return false
		}
		switch b[i-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return true
		}
		return false
	}
	return false
}

// refuseTooLarge answers a request over MaxRequestBytes.
func refuseTooLarge(w http.ResponseWriter) {
	refuse(w, http.StatusRequestEntityTooLarge, 0, fmt.Sprintf("request larger than %d MB: send large files in several messages", MaxRequestBytes>>20))
}

func refuse(w http.ResponseWriter, code int, wait time.Duration, msg string) {
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":%q}`+"\n", msg)
}
