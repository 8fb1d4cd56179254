package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ledongthuc/pdf"
)

// The PDF parser recurses into nested objects without a bound, so a
// crafted file can exhaust the stack, which no recover catches, or loop.
// PDFs are therefore read by this same program re-executed as a child
// (childEnv set; see init): the file on stdin, the text on stdout. The
// child limits its own CPU time, stack and heap; the parent kills it at
// Timeout and reads at most MaxOutput bytes of its answer.
const childEnv = "IMAP_MCP_EXTRACT_CHILD"

// Child limits.
const (
	childStack  = 64 << 20
	childMemory = 768 << 20 // soft: the heap the runtime aims to stay below
	childHeap   = 1 << 30   // hard: the child gives up past this
)

// Exit codes of the child.
const (
	exitRefused = 3 // stdout holds the reason
	exitTooBig  = 4
)

func init() {
	if os.Getenv(childEnv) == "pdf" {
		os.Exit(runChild())
	}
}

// readPDF runs the child on data and returns its text.
func readPDF(ctx context.Context, data []byte) (string, bool, error) {
	if err := acquire(ctx, children); err != nil {
		return "", false, timeoutError(ctx, PDF)
	}
	defer func() { <-children }()
	self, err := executable()
	if err != nil {
		return "", false, refuse(PDF, "the PDF reader could not be started")
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(minimalEnv(), childEnv+"=pdf")
	cmd.Stdin = bytes.NewReader(data)
	cmd.WaitDelay = time.Second
	stdout := &limitedBuffer{max: MaxOutput + 1}
	cmd.Stdout = stdout // stderr (a crash report) is discarded
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "", false, timeoutError(ctx, PDF)
	case errors.As(err, &exit) && exit.ExitCode() == exitRefused:
		return "", false, refuse(PDF, "%s", short(stdout.String())) // one of the reasons pdfText gives
	case errors.As(err, &exit) && exit.ExitCode() == exitTooBig:
		return "", false, refuse(PDF, "reading it needed more than %d MB of memory", childHeap>>20)
	case errors.As(err, &exit):
		// A fatal error (stack exhausted, out of memory) or a signal
		// (CPU time limit).
		return "", false, refuse(PDF, "its structure is too deeply nested, too large or broken to read safely")
	case err != nil:
		return "", false, refuse(PDF, "the PDF reader could not be started")
	}
	text := stdout.String()
	if len(text) > MaxOutput {
		return text[:validPrefix(text, MaxOutput)], true, nil
	}
	return text, false, nil
}

// executable is this program: /proc/self/exe where there is one, which
// still works after the file on disk was replaced by an upgrade.
func executable() (string, error) {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe", nil
	}
	return os.Executable()
}

// minimalEnv passes the child only what the Go runtime may use.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "TMPDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// limitedBuffer keeps the first max bytes written and discards the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// runChild reads a PDF from stdin and writes its text, page by page, to
// stdout.
func runChild() int {
	limitChild()
	data, err := io.ReadAll(io.LimitReader(os.Stdin, MaxInput+1))
	if err != nil || len(data) > MaxInput {
		fmt.Print("it could not be read whole")
		return exitRefused
	}
	text, reason := pdfText(data)
	if reason != "" {
		fmt.Print(reason)
		return exitRefused
	}
	_, _ = os.Stdout.WriteString(text)
	return 0
}

// pdfText extracts the text of every page, at most MaxPages, each page
// under a heading; a reason is given when nothing can be read.
func pdfText(data []byte) (text, reason string) {
	defer func() {
		if r := recover(); r != nil {
			text, reason = "", "its structure is broken"
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if strings.Contains(err.Error(), "encrypt") || strings.Contains(err.Error(), "password") {
			return "", "it is encrypted (password-protected)"
		}
		return "", "it is not a valid PDF"
	}
	n := r.NumPage()
	if n == 0 {
		return "", "it has no pages"
	}
	var b strings.Builder
	empty := 0
	for i := 1; i <= min(n, MaxPages); i++ {
		p := r.Page(i)
		fmt.Fprintf(&b, "\n## Page %d\n", i)
		t, err := p.GetPlainText(nil)
		if err != nil {
			b.WriteString("(this page could not be read)\n")
			continue
		}
		t = strings.TrimSpace(t)
		if t == "" {
			empty++
		}
		b.WriteString(t + "\n")
		if b.Len() > MaxOutput {
			break
		}
	}
	if n > MaxPages {
		fmt.Fprintf(&b, "… %d more pages not read (at most %d are).\n", n-MaxPages, MaxPages)
	}
	if empty == min(n, MaxPages) {
		return "", "it has no text layer (a scan or images only); it would need OCR"
	}
	return b.String(), ""
}
