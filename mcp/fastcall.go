package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/mark3labs/mcp-go/server"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/oauth"
)

// Tool calls, nearly all that clients send, are answered here without the
// MCP library's transport, which spends about a tenth of the server's CPU
// per call around the tool: an ephemeral session with its channels and
// goroutine, and five decodings of the body. A call is taken here only
// when the library would serve it plainly: one legacy-era (before
// 2026-07-28) tools/call request, params of only name and arguments, a
// tool the caller's scopes allow. Everything else goes to the library as
// it came. The answer is the library's, byte for byte, for every result
// and error our tools return (TestFastCallsAnswerAsTheLibrary); the
// library's handling of results that ask the client for more input, and
// of URL-elicitation errors, which no tool of ours returns, is not
// repeated here.

// fastRequest is the whole of a request taken here: any other member
// sends it to the library.
type fastRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  onceParams      `json:"params"`
}

type fastParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Meta      *mcplib.Meta    `json:"_meta"` // a progress token, say; not a 2026-07-28 protocol version
}

// onceParams is params, counted: the library's several decodings of a
// request with params twice would not agree with one another, or with
// the last params alone, so such a request is left to it.
type onceParams struct {
	p *fastParams
	n int
}

func (o *onceParams) UnmarshalJSON(data []byte) error {
	o.n++
	o.p = new(fastParams)
	if !decodeOnly(data, o.p) {
		return errors.New("params: not a plain tool call")
	}
	return nil
}

// fastCalls serves the plain tool calls of tools (handlers by name, with
// their middleware and recovered) and hands every other request to next.
func (s *Server) fastCalls(tools map[string]server.ToolHandlerFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil { // the library answers it, as it would have
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			next.ServeHTTP(w, r)
			return
		}
		p, _ := oauth.PrincipalFrom(r.Context())
		id, req, handler, ok := s.plainCall(r, body, tools)
		if !ok {
			var env envelope
			_ = json.Unmarshal(body, &env) // a body that is not JSON is the library's to answer
			if id, ok := cancelled(r, body, env); ok {
				s.inflight.cancel(flightKey{p.UserID, p.ClientID, string(id)})
				w.WriteHeader(http.StatusAccepted) // as the library answers a notification
				return
			}
			// A call the library serves can be cancelled too.
			if id, ok := libraryID(env.ID); ok && env.Method == string(mcplib.MethodToolsCall) {
				ctx, done := s.inflight.start(r.Context(), flightKey{p.UserID, p.ClientID, string(id)})
				defer done()
				r = r.WithContext(ctx)
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			next.ServeHTTP(w, r)
			return
		}
		ctx, done := s.inflight.start(r.Context(), flightKey{p.UserID, p.ClientID, string(id)})
		defer done()
		res, err := handler(ctx, req)
		writeCall(w, id, req.Params.Name, res, err)
	})
}

// flightKey names a fast call in flight: its caller and its id as the
// library renders it.
type flightKey struct{ user, client, id string }

// inflight holds the fast calls in flight, for notifications/cancelled;
// a caller reaches only their own.
type inflight struct {
	mu    sync.Mutex
	calls map[flightKey][]*context.CancelFunc
}

// start returns the context for the call k and the func that ends it.
func (f *inflight) start(parent context.Context, k flightKey) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	c := &cancel
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[flightKey][]*context.CancelFunc{}
	}
	f.calls[k] = append(f.calls[k], c)
	f.mu.Unlock()
	return ctx, func() {
		cancel()
		f.mu.Lock()
		defer f.mu.Unlock()
		if rest := slices.DeleteFunc(f.calls[k], func(o *context.CancelFunc) bool { return o == c }); len(rest) > 0 {
			f.calls[k] = rest
		} else {
			delete(f.calls, k)
		}
	}
}

// cancel cancels the calls in flight under k (a client may reuse an id
// across its connections).
func (f *inflight) cancel(k flightKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls[k] {
		(*c)()
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// plainCall decodes body as a tool call the library would serve plainly,
// returning its id as the library renders it.
func (s *Server) plainCall(r *http.Request, body []byte, tools map[string]server.ToolHandlerFunc) (id []byte, req mcplib.CallToolRequest, h server.ToolHandlerFunc, ok bool) {
	// Most other requests are told apart without decoding them (a method
	// spelt with escapes goes to the library, which reads it as well).
	if !bytes.Contains(body, []byte(mcplib.MethodToolsCall)) || !legacyJSON(r) {
		return nil, req, nil, false
	}
	var m fastRequest
	if !decodeOnly(body, &m) || m.JSONRPC != mcplib.JSONRPC_VERSION || m.Method != string(mcplib.MethodToolsCall) ||
		len(m.ID) == 0 || m.Params.n != 1 || m.Params.p.Meta.ProtocolVersion() != "" {
		return nil, req, nil, false
	}
	p := m.Params.p
	id, ok = libraryID(m.ID)
	if !ok {
		return nil, req, nil, false
	}
	h, known := tools[p.Name]
	if pr, _ := oauth.PrincipalFrom(r.Context()); !known || !s.allowed(pr, p.Name) {
		return nil, req, nil, false // the library says the tool is not found
	}
	req.Method = string(mcplib.MethodToolsCall)
	req.Header = r.Header
	req.Params.Name, req.Params.Meta = p.Name, p.Meta
	// The handler binds the raw arguments; the schema check decodes them
	// for the activity summary.
	req.Params.RawArguments = p.Arguments
	return id, req, h, true
}

// legacyJSON reports that r carries JSON of a protocol version before
// 2026-07-28 (or none), as far as its headers tell.
func legacyJSON(r *http.Request) bool {
	if !isJSON(r) {
		return false
	}
	v := r.Header.Get(mcplib.HeaderProtocolVersion)
	return v == "" || mcplib.IsValidProtocolVersion(v) && !mcplib.IsModernProtocol(v)
}

// smallInteger reports that raw is a JSON integer of at most 15 digits,
// which a float64 holds exactly, other than -0.
func smallInteger(raw []byte) bool {
	digits := bytes.TrimPrefix(raw, []byte("-"))
	if len(digits) == 0 || len(digits) > 15 || digits[0] == '0' && (len(digits) > 1 || len(raw) > 1) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// libraryID returns a request id as the library renders it: it decodes
// the id as any value and encodes it again. Only strings and numbers are
// taken.
func libraryID(raw json.RawMessage) ([]byte, bool) {
	if smallInteger(raw) { // the library's float64 writes it as it came
		return raw, true
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	switch v.(type) {
	case string, float64:
	default:
		return nil, false
	}
	id, err := json.Marshal(v)
	return id, err == nil
}

// cancelled reports that body is a notifications/cancelled the library
// would act on, and the id of the request it cancels, rendered as the
// library renders ids (nil when it names none). The library would look
// the id up among every caller's requests (stateless, it keys them by the
// session id the client sends, usually none), so such notifications are
// never handed to it:
// they are answered 202 here, in every protocol era, where the library
// would first check a 2026-07-28 request's headers.
func cancelled(r *http.Request, body []byte, m envelope) ([]byte, bool) {
	// Without an id (or with a null one) the library takes it as a notification.
	if m.JSONRPC != mcplib.JSONRPC_VERSION || m.Method != string(mcplib.MethodNotificationCancelled) ||
		len(m.ID) > 0 && string(m.ID) != "null" || !isJSON(r) {
		return nil, false
	}
	if v := r.Header.Get(mcplib.HeaderProtocolVersion); v != "" && !mcplib.IsValidProtocolVersion(v) {
		return nil, false // refused unread
	}
	var n mcplib.JSONRPCNotification // decoded as the library decodes it
	if json.Unmarshal(body, &n) != nil {
		return nil, false // the library answers that it cannot parse it
	}
	v, ok := n.Params.AdditionalFields["requestId"]
	if !ok {
		return nil, true
	}
	id, err := json.Marshal(v)
	if err != nil {
		return nil, true
	}
	return id, true
}

// envelope is what says which request a body is.
type envelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
}

// decodeOnly decodes data, one JSON object, into v, and fails on any
// member v has no field for.
func decodeOnly(data []byte, v any) bool {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if d.Decode(v) != nil {
		return false
	}
	_, err := d.Token()
	return err == io.EOF
}

// recovered turns a panic in h into an error, worded as the library's
// WithRecovery words it.
func recovered(h server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcplib.CallToolRequest) (res *mcplib.CallToolResult, err error) {
		err = safely(req.Params.Name, func() (err error) {
			res, err = h(ctx, req)
			return err
		})
		return res, err
	}
}

// safely runs f of tool, turning a panic into that error.
func safely(tool string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic recovered in %s tool handler: %v", tool, p)
		}
	}()
	return f()
}

// writeCall writes the JSON-RPC answer to the call id of tool: res, or
// err as the library reports a failed handler.
func writeCall(w http.ResponseWriter, id []byte, tool string, res *mcplib.CallToolResult, err error) {
	if err == nil && res == nil {
		err = fmt.Errorf("tool '%s' handler returned no result", tool)
	}
	b := scratch.Get().(*bytes.Buffer)
	defer putScratch(b)
	b.Reset()
	if err == nil && plainResult(res) {
		b.WriteString(`{"jsonrpc":"2.0","id":`)
		b.Write(id)
		b.WriteString(`,"result":{`)
		if err = safely(tool, func() error { return writeResult(b, res) }); err == nil {
			b.WriteString("}}\n")
		}
	}
	if err != nil || !plainResult(res) {
		// An error, or a result with members writeResult does not write:
		// the library's types encode it.
		b.Reset()
		var rid any
		_ = json.Unmarshal(id, &rid)
		var answer any = mcplib.JSONRPCResponse{JSONRPC: mcplib.JSONRPC_VERSION, ID: mcplib.NewRequestId(rid), Result: res}
		if err != nil {
			answer = mcplib.JSONRPCError{JSONRPC: mcplib.JSONRPC_VERSION, ID: mcplib.NewRequestId(rid),
				Error: mcplib.NewJSONRPCErrorDetails(mcplib.INTERNAL_ERROR, err.Error(), nil)}
		}
		_ = json.NewEncoder(b).Encode(answer)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}
