// Package extract turns the files people attach to mail into plain text
// for a model to read: PDF, the Office Open XML and OpenDocument formats,
// iCalendar, CSV and plain text. Every file is treated as hostile: input
// size, decompressed size, pages, output and time are bounded, and PDF,
// whose parser can recurse without bound, is read in a child process
// with its own CPU, memory and stack limits (see child.go).
package extract

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Kind is a format this package reads; the empty Kind is none.
type Kind string

// Kinds.
const (
	PDF      Kind = "pdf"
	DOCX     Kind = "docx"
	XLSX     Kind = "xlsx"
	PPTX     Kind = "pptx"
	ODF      Kind = "opendocument" // odt, ods, odp
	Calendar Kind = "calendar"
	CSV      Kind = "csv"
	Text     Kind = "text"
)

// Limits against hostile files.
const (
	// MaxInput is the largest file read.
	MaxInput = 25 << 20
	// MaxExpanded bounds what a zip-based file may decompress to, all
	// parts read together.
	MaxExpanded = 64 << 20
	// MaxOutput bounds the text of one file; longer text is cut there.
	MaxOutput = 4 << 20
	// MaxPages bounds the PDF pages, slides or sheets read.
	MaxPages = 2000
	// Timeout bounds one extraction (CPU time too, for PDF).
	Timeout = 20 * time.Second
)

var byType = map[string]Kind{
	"application/pdf": PDF, "application/x-pdf": PDF,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document":   DOCX,
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":         XLSX,
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": PPTX,
	"application/vnd.oasis.opendocument.text":                                   ODF,
	"application/vnd.oasis.opendocument.spreadsheet":                            ODF,
	"application/vnd.oasis.opendocument.presentation":                           ODF,
	"text/calendar": Calendar, "application/ics": Calendar,
	"text/csv": CSV, "text/comma-separated-values": CSV, "application/csv": CSV,
	"text/plain": Text, "text/markdown": Text, "text/x-markdown": Text, "text/tab-separated-values": Text,
	"application/json": Text, "text/xml": Text, "application/xml": Text, "text/x-log": Text,
}

var byExt = map[string]Kind{
	".pdf": PDF, ".docx": DOCX, ".docm": DOCX, ".xlsx": XLSX, ".xlsm": XLSX, ".pptx": PPTX, ".pptm": PPTX,
	".odt": ODF, ".ods": ODF, ".odp": ODF, ".ics": Calendar, ".ical": Calendar, ".vcs": Calendar, ".csv": CSV,
	".txt": Text, ".md": Text, ".log": Text, ".json": Text, ".xml": Text, ".tsv": Text, ".eml.txt": Text,
}

// Detect names the Kind of a file from its media type, or from its
// name's extension when the type is generic (mail programs often send
// application/octet-stream); "" when this package cannot read it.
func Detect(contentType, filename string) Kind {
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if k, ok := byType[ct]; ok {
		return k
	}
	if ct == "" || ct == "application/octet-stream" || ct == "application/zip" || ct == "application/x-zip-compressed" ||
		ct == "application/download" || ct == "application/force-download" || strings.HasPrefix(ct, "application/x-") {
		return byExt[strings.ToLower(path.Ext(filename))]
	}
	return ""
}

// Error is a file that could not be read: the message names what and why,
// for a person or a model.
type Error struct {
	Kind Kind
	// Type, when set, names the file's type in the message instead of
	// Kind.
	Type   string
	Reason string
	// Passing is set when the refusal says nothing about the file (the
	// server was busy): the same file may be read later.
	Passing bool
}

func (e *Error) Error() string {
	name := e.Type
	if name == "" {
		name = e.Kind.Name()
	}
	if name == "" {
		return "this file could not be read: " + e.Reason
	}
	return fmt.Sprintf("this %s file could not be read: %s", name, e.Reason)
}

// Name is how messages call the Kind.
func (k Kind) Name() string {
	switch k {
	case ODF:
		return "OpenDocument"
	case Calendar:
		return "calendar (iCalendar)"
	case Text:
		return "text"
	case "message":
		return "attached message"
	}
	return strings.ToUpper(string(k))
}

func refuse(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

// Read returns the text of data, a file of kind k, and whether it was cut
// at MaxOutput. charset applies to text formats (empty means UTF-8 or
// detected). Plain text is decoded here; every other format is parsed in
// a child process (see child.go). Errors are *Error, or ctx's.
func Read(ctx context.Context, k Kind, data []byte, charset string) (text string, cut bool, err error) {
	if len(data) > MaxInput {
		return "", false, refuse(k, "it is %.1f MB, and at most %d MB are read", float64(len(data))/(1<<20), MaxInput>>20)
	}
	switch k {
	case Text:
		text = decodeText(data, charset)
		if len(text) > MaxOutput {
			// A copy: the cut must not keep the whole decoded text alive.
			return strings.Clone(text[:validPrefix(text, MaxOutput)]), true, nil
		}
		return text, false, nil
	case PDF, DOCX, XLSX, PPTX, ODF, Calendar, CSV:
	default:
		return "", false, refuse(k, "this type is not one read_attachment reads")
	}
	wait, stop := context.WithTimeout(ctx, Timeout)
	err = acquire(wait, children)
	stop()
	if err != nil {
		return "", false, &Error{Kind: k, Reason: "the server is busy reading other files: try again shortly", Passing: true}
	}
	defer func() { <-children }()
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	return readInChild(ctx, k, data, charset)
}

// parse reads data of kind k in this process: the child's work. Panics
// of the parsers are recovered; the output stops at MaxOutput.
func parse(ctx context.Context, k Kind, data []byte, charset string) (text string, cut bool, err error) {
	out := &output{ctx: ctx, kind: k}
	defer func() {
		if r := recover(); r != nil {
			if r == errFull {
				text, cut, err = out.String(), true, nil
				return
			}
			if e, ok := r.(error); ok && (errors.Is(e, context.DeadlineExceeded) || errors.Is(e, context.Canceled)) {
				text, cut, err = "", false, timeoutError(ctx, k)
				return
			}
			text, cut, err = "", false, refuse(k, "its structure is broken")
		}
	}()
	switch k {
	case PDF:
		err = readPDF(out, data)
	case DOCX:
		err = readDOCX(out, data)
	case XLSX:
		err = readXLSX(out, data)
	case PPTX:
		err = readPPTX(out, data)
	case ODF:
		err = readODF(out, data)
	case Calendar:
		err = readCalendar(out, data, charset)
	case CSV:
		err = readCSV(out, data, charset)
	}
	if err != nil {
		return "", false, err
	}
	return out.String(), false, nil
}

func timeoutError(ctx context.Context, k Kind) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return refuse(k, "reading it took longer than %s", Timeout)
	}
	return ctx.Err()
}

// children bounds the child processes running at once (each may use
// childHeap).
var children = make(chan struct{}, 2)

// acquire takes a slot of sem, waiting while ctx lasts.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errFull is raised (as a panic, caught by Read) when the output is full.
var errFull = errors.New("output full")

// output collects text up to MaxOutput and checks the deadline as it
// grows.
type output struct {
	strings.Builder
	ctx  context.Context
	kind Kind
	n    int
}

// WriteString adds s, panicking with errFull past MaxOutput and with the
// context's error once it is done.
func (o *output) WriteString(s string) (int, error) {
	o.tick()
	if o.Len()+len(s) > MaxOutput {
		o.Builder.WriteString(s[:validPrefix(s, MaxOutput-o.Len())])
		panic(errFull)
	}
	return o.Builder.WriteString(s)
}

// tick panics with the context's error, checked every 256 calls, once it
// is done: parsers call it as they go, also where they write nothing.
func (o *output) tick() {
	if o.n++; o.n%256 == 0 && o.ctx.Err() != nil {
		panic(o.ctx.Err())
	}
}

// validPrefix returns a length of s at most n that does not split a UTF-8
// sequence.
func validPrefix(s string, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return n
}
