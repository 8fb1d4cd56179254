package extract

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// The parsers run on files written by strangers, and some failures no
// recover catches: a recursion that exhausts the stack, an allocation
// that exhausts memory, a loop. Every format but plain text is therefore
// parsed by this same program re-executed as a child (childEnv names the
// kind; see init): the file on stdin, a status line and the text on
// stdout. The child limits its own stack, heap and CPU time; the parent
// kills it at Timeout and reads at most MaxOutput bytes of its answer.
const (
	childEnv        = "IMAP_MCP_EXTRACT_CHILD"
	childCharsetEnv = "IMAP_MCP_EXTRACT_CHARSET"
)

// Child limits.
const (
	childStack  = 64 << 20
	childMemory = 256 << 20 // soft: the heap the runtime aims to stay below
	childHeap   = 512 << 20 // hard: the child gives up past this
)

// Exit code of a child whose heap grew past childHeap.
const exitTooBig = 4

// Status lines of the child's answer.
const (
	statusText    = "text\n"
	statusCut     = "cut\n"
	statusRefused = "refused\n"
)

func init() {
	if k := Kind(os.Getenv(childEnv)); k != "" {
		os.Exit(runChild(k, os.Getenv(childCharsetEnv)))
	}
}

var charsetName = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,40}$`)

// readInChild runs the child on data and returns its text.
func readInChild(ctx context.Context, k Kind, data []byte, charset string) (string, bool, error) {
	self, err := childProgram()
	if err != nil {
		return "", false, &Error{Kind: k, Reason: "the reader could not be started", Passing: true}
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(minimalEnv(), childEnv+"="+string(k))
	if charsetName.MatchString(charset) {
		cmd.Env = append(cmd.Env, childCharsetEnv+"="+charset)
	}
	cmd.Stdin = bytes.NewReader(data)
	cmd.WaitDelay = time.Second
	stdout := &limitedBuffer{max: len(statusText) + MaxOutput}
	cmd.Stdout = stdout // stderr (a crash report) is discarded
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return "", false, timeoutError(ctx, k)
	case errors.As(err, &exit) && exit.ExitCode() == exitTooBig:
		return "", false, refuse(k, "reading it needed more than %d MB of memory", childHeap>>20)
	case errors.As(err, &exit):
		// A fatal error (stack or memory exhausted) or a signal (the CPU
		// time limit).
		return "", false, refuse(k, "its structure is too deeply nested, too large or too broken to read safely")
	case err != nil:
		return "", false, &Error{Kind: k, Reason: "the reader could not be started", Passing: true}
	}
	answer := stdout.String()
	switch {
	case strings.HasPrefix(answer, statusText):
		return answer[len(statusText):], false, nil
	case strings.HasPrefix(answer, statusCut):
		text := answer[len(statusCut):]
		return text[:validPrefix(text, MaxOutput)], true, nil
	case strings.HasPrefix(answer, statusRefused):
		// The reasons are this package's own sentences, never file content.
		return "", false, refuse(k, "%s", strings.Map(printable, short(answer[len(statusRefused):])))
	}
	return "", false, refuse(k, "the reader gave no answer")
}

func printable(r rune) rune {
	if r < ' ' || r == 0x7f {
		return -1
	}
	return r
}

// childProgram is the program run as the child: this one (a test
// replaces it to show how a child that fails is answered).
var childProgram = executable

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

// runChild is the child: it parses the file on stdin and answers on
// stdout.
func runChild(k Kind, charset string) int {
	limitChild()
	data, err := io.ReadAll(io.LimitReader(os.Stdin, MaxInput+1))
	if err != nil || len(data) > MaxInput {
		_, _ = os.Stdout.WriteString(statusRefused + "it could not be read whole")
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	text, cut, err := parse(ctx, k, data, charset)
	var e *Error
	switch {
	case errors.As(err, &e):
		_, _ = os.Stdout.WriteString(statusRefused + e.Reason)
	case err != nil:
		_, _ = os.Stdout.WriteString(statusRefused + "reading it took too long")
	case cut:
		_, _ = os.Stdout.WriteString(statusCut + text)
	default:
		_, _ = os.Stdout.WriteString(statusText + text)
	}
	return 0
}

// limitChild bounds the child's stack (a deeper recursion is a fatal
// error that ends only the child), its heap and, where the system has
// them, its CPU time and address space.
func limitChild() {
	debug.SetMaxStack(childStack)
	debug.SetMemoryLimit(childMemory)
	limitSystem()
	go func() {
		var m runtime.MemStats
		for {
			time.Sleep(20 * time.Millisecond)
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > childHeap {
				os.Exit(exitTooBig)
			}
		}
	}()
}
