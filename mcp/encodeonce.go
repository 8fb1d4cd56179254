package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/mark3labs/mcp-go/server"

	mcplib "github.com/mark3labs/mcp-go/mcp"

	"github.com/imap-mcp/imap-mcp/auth"
)

// The MCP library encodes a tool result three times over: the result's
// MarshalJSON builds a map and marshals it, then the JSON-RPC encoder
// checks and compacts those bytes again, one byte at a time. For a 20 KB
// list_messages answer that cost three times the encoding itself, and
// more than any other step of the call. So a result is encoded once, here:
// the tool middleware encodes it into the request's result slot and hands
// the library a stand-in whose only text is a reference holding the
// request's random nonce; the HTTP handler, which holds the library's
// small answer, puts the encoded result where the stand-in's content is.
// Mail never passes through the library's answer, so nothing in it can
// forge, move or reach the reference.

// resultRefPrefix starts the stand-in's text.
const resultRefPrefix = "imcp-result:"

// resultSlot is one request's encoded result. The tool's goroutine fills
// it while the library's notification forwarder may be writing through
// splice, hence the lock.
type resultSlot struct {
	nonce string
	mu    sync.Mutex
	body  []byte // the result object's members, "content" first; nil until a tool answers
}

// fill keeps body as the slot's result, if it has none yet.
func (s *resultSlot) fill(body []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.body != nil {
		return false
	}
	s.body = body
	return true
}

func (s *resultSlot) result() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body
}

type resultSlotKey struct{}

// standInContent is how the library writes the stand-in's content member.
func (s *resultSlot) standInContent() []byte {
	return []byte(`"content":[{"type":"text","text":"` + resultRefPrefix + s.nonce + `"}]`)
}

// encodeOnce is the tool middleware that moves a result into the
// request's slot. A result using members this encoding does not write
// (metadata, multi round-trip input) goes through the library as it is.
func encodeOnce(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcplib.CallToolRequest) (*mcplib.CallToolResult, error) {
		res, err := next(ctx, req)
		slot, _ := ctx.Value(resultSlotKey{}).(*resultSlot)
		if err != nil || res == nil || slot == nil || !plainResult(res) {
			return res, err
		}
		body, err := encodeResult(res)
		if err != nil {
			return nil, err
		}
		if !slot.fill(body) {
			return res, nil
		}
		return mcplib.NewToolResultText(resultRefPrefix + slot.nonce), nil
	}
}

// plainResult reports that res uses only the members encodeResult writes.
func plainResult(res *mcplib.CallToolResult) bool {
	return res.Meta == nil && len(res.RawStructuredContent) == 0 && res.ResultType == "" &&
		len(res.InputRequests) == 0 && res.RequestState == ""
}

// encodeResult is writeResult into a buffer of its own.
func encodeResult(res *mcplib.CallToolResult) ([]byte, error) {
	b := scratch.Get().(*bytes.Buffer)
	defer putScratch(b)
	b.Reset()
	if err := writeResult(b, res); err != nil {
		return nil, err
	}
	return bytes.Clone(b.Bytes()), nil
}

// writeResult writes to b the members of res that the library's
// MarshalJSON writes for it: content (an empty list when there is none),
// then structuredContent and isError when set. It encodes without
// escaping <, > and & (the answer is JSON for an MCP client, never HTML).
// Plain text content, MessagePage and MessageDetail skip encoding/json:
// they encode themselves. The types are matched exactly, since a type
// embedding one of the self-encoding types would inherit its appendJSON.
func writeResult(b *bytes.Buffer, res *mcplib.CallToolResult) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	encode := func(v any) error {
		switch v := v.(type) {
		case MessagePage:
			b.Write(v.appendJSON(b.AvailableBuffer()))
			return nil
		case MessageDetail:
			b.Write(v.appendJSON(b.AvailableBuffer()))
			return nil
		}
		if err := enc.Encode(v); err != nil { // Encode writes nothing when it fails
			return err
		}
		b.Truncate(b.Len() - 1) // without Encode's newline
		return nil
	}
	b.WriteString(`"content":`)
	if len(res.Content) == 0 {
		b.WriteString("[]")
	} else if text, ok := appendTextContent(b.AvailableBuffer(), res.Content); ok {
		b.Write(text)
	} else if err := encode(res.Content); err != nil {
		return err
	}
	if res.StructuredContent != nil {
		b.WriteString(`,"structuredContent":`)
		if err := encode(res.StructuredContent); err != nil {
			return err
		}
	}
	if res.IsError {
		b.WriteString(`,"isError":true`)
	}
	return nil
}

// appendTextContent appends content to b when every item is text with
// no annotations or metadata, as encoding/json would; ok is false, and
// nothing is appended, when an item is anything else.
func appendTextContent(b []byte, content []mcplib.Content) (_ []byte, ok bool) {
	for _, c := range content {
		if t, ok := c.(mcplib.TextContent); !ok || t.Annotations != nil || t.Meta != nil || t.Type != "text" {
			return b, false
		}
	}
	b = append(b, '[')
	for i, c := range content {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(b, `{"type":"text","text":`...), c.(mcplib.TextContent).Text)
		b = append(b, '}')
	}
	return append(b, ']'), true
}

// scratch holds buffers for encoding and joining answers; one that grew
// past maxJoined is not kept.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxJoined = 1 << 20

func putScratch(b *bytes.Buffer) {
	if b.Cap() <= maxJoined {
		scratch.Put(b)
	}
}

// internalError is the answer when the stand-in cannot be placed.
const internalError = `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error: the result could not be written"}}`

// splice returns p with the slot's result in place of the stand-in, as
// the parts to write; ok is false when p holds the reference in some
// other form, which must never reach a client in place of its result.
func (s *resultSlot) splice(p []byte) (parts [][]byte, ok bool) {
	body := s.result()
	if body == nil {
		return [][]byte{p}, true
	}
	standIn := s.standInContent()
	switch i := bytes.Index(p, standIn); {
	case i >= 0 && bytes.Count(p, standIn) == 1:
		return [][]byte{p[:i], body, p[i+len(standIn):]}, true
	case bytes.Contains(p, []byte(s.nonce)):
		return nil, false
	}
	return [][]byte{p}, true
}

// spliceResults serves next with a result slot and writes its answer with
// the slot's result in place of the stand-in.
func spliceResults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slot := &resultSlot{nonce: auth.NewToken()}
		held := &heldResponse{w: w, slot: slot}
		next.ServeHTTP(held, r.WithContext(context.WithValue(r.Context(), resultSlotKey{}, slot)))
		if held.streaming {
			return
		}
		parts, ok := slot.splice(held.body.Bytes())
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Del("Content-Length")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(internalError + "\n"))
			return
		}
		writeJoined(w, held.status, parts)
	})
}

// writeJoined writes parts as one answer with its length and status (none
// when 0): in one write up to maxJoined bytes, since the pieces one by one
// cost the connection a send each.
func writeJoined(w http.ResponseWriter, status int, parts [][]byte) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	if status != 0 {
		w.WriteHeader(status)
	}
	if n > maxJoined {
		_ = writeParts(w, parts)
		return
	}
	b := scratch.Get().(*bytes.Buffer)
	defer putScratch(b)
	b.Reset()
	for _, p := range parts {
		b.Write(p)
	}
	_, _ = w.Write(b.Bytes())
}

func writeParts(w io.Writer, parts [][]byte) error {
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// heldResponse keeps what the library writes until it is done, so that
// the result can be put in place and the length given. When the library
// streams (it flushes: an SSE answer), what is held goes out and every
// later write goes out at once; the library writes each event whole, so
// the stand-in is replaced within the write that holds it.
type heldResponse struct {
	w         http.ResponseWriter
	slot      *resultSlot
	status    int
	body      bytes.Buffer
	streaming bool
}

func (h *heldResponse) Header() http.Header { return h.w.Header() }

func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldResponse) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	if h.streaming {
		return len(p), h.send(p)
	}
	return h.body.Write(p)
}

func (h *heldResponse) Flush() {
	if !h.streaming {
		h.streaming = true
		if h.status == 0 {
			h.status = http.StatusOK
		}
		h.w.WriteHeader(h.status)
		if err := h.send(h.body.Bytes()); err != nil {
			return
		}
		h.body.Reset()
	}
	if f, ok := h.w.(http.Flusher); ok {
		f.Flush()
	}
}

// send writes p, streaming, with the result in place.
func (h *heldResponse) send(p []byte) error {
	parts, ok := h.slot.splice(p)
	if !ok {
		parts = [][]byte{[]byte("event: message\ndata: " + internalError + "\n\n")}
	}
	return writeParts(h.w, parts)
}
