package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imap-mcp/imap-mcp/store"
)

// ActivityStore keeps the activity log.
type ActivityStore interface {
	AddActivity(ctx context.Context, batch []store.Activity) error
}

// Activity is written off the request path: calls queue their row, and
// one goroutine writes what has queued in one transaction every
// activityFlushEvery (or sooner when activityBatch rows wait). A full
// queue drops rows rather than slow a call; the drops are logged.
const (
	activityQueue      = 4096
	activityBatch      = 256
	activityFlushEvery = 500 * time.Millisecond
)

type activityLog struct {
	st      ActivityStore
	log     func(msg string, args ...any)
	queue   chan store.Activity
	flushed chan chan struct{}
	done    chan struct{}
	stop    sync.Once
	dropped atomic.Int64
}

func newActivityLog(st ActivityStore, warn func(msg string, args ...any)) *activityLog {
	l := &activityLog{st: st, log: warn, queue: make(chan store.Activity, activityQueue), flushed: make(chan chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// add queues a row without waiting.
func (l *activityLog) add(a store.Activity) {
	select {
	case l.queue <- a:
	default:
		l.dropped.Add(1)
	}
}

func (l *activityLog) run() {
	defer close(l.done)
	tick := time.NewTicker(activityFlushEvery)
	defer tick.Stop()
	var batch []store.Activity
	write := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := l.st.AddActivity(ctx, batch); err != nil {
			l.log("activity log: write failed", "rows", len(batch), "err", err)
		}
		if n := l.dropped.Swap(0); n > 0 {
			l.log("activity log: queue full, rows dropped", "rows", n)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case a, ok := <-l.queue:
			if !ok {
				write()
				return
			}
			if batch = append(batch, a); len(batch) >= activityBatch {
				write()
			}
		case <-tick.C:
			write()
		case ack := <-l.flushed:
			for n := len(l.queue); n > 0; n-- {
				batch = append(batch, <-l.queue)
			}
			write()
			close(ack)
		}
	}
}

// flush writes every row queued so far.
func (l *activityLog) flush() {
	ack := make(chan struct{})
	select {
	case l.flushed <- ack:
		<-ack
	case <-l.done:
	}
}

// close writes what is queued and stops the writer.
func (l *activityLog) close() {
	l.stop.Do(func() {
		close(l.queue)
		<-l.done
	})
}

// callInfo is what one tool call learns on its way, for its activity
// row: the scope it needs, and the account it resolved.
type callInfo struct {
	scope    string
	clientID string
	// stored is the account the call resolved, as stored (its ID alone
	// when only that is known).
	stored store.MailAccount
	// summary, when a tool sets it, replaces the one written from the
	// arguments (a send says what became of the message).
	summary string
	// args are the arguments as the schema check decoded them.
	args map[string]any
}

type callInfoKey struct{}

func withCallInfo(ctx context.Context, ci *callInfo) context.Context {
	return context.WithValue(ctx, callInfoKey{}, ci)
}

func callInfoFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callInfoKey{}).(*callInfo)
	if ci == nil {
		return &callInfo{}
	}
	return ci
}

// summaryField bounds a name or subject in an activity summary.
const summaryField = 80

// summarize says in one line what a tool call asked for, from its
// arguments: folders, UIDs, counts, recipients and subjects, never a
// body, an attachment or a search text.
func summarize(tool string, args map[string]any) string {
	str := func(k string) string {
		v, _ := args[k].(string)
		return capRunes(cleanSummary(v), summaryField)
	}
	folder := func(k string) string {
		if f := str(k); f != "" {
			return f
		}
		return "INBOX"
	}
	num := func(k string) string {
		switch v := args[k].(type) {
		case float64:
			return strconv.FormatFloat(v, 'f', 0, 64)
		case json.Number:
			if f, err := v.Float64(); err == nil {
				return strconv.FormatFloat(f, 'f', 0, 64)
			}
		}
		return "?"
	}
	count := func(k string) int {
		list, _ := args[k].([]any)
		return len(list)
	}
	list := func(k string) string {
		items, _ := args[k].([]any)
		var out []string
		for _, it := range items {
			if s, ok := it.(string); ok {
				out = append(out, capRunes(cleanSummary(s), summaryField))
			}
		}
		if len(out) > 3 {
			out = append(out[:3], fmt.Sprintf("+%d more", len(out)-3))
		}
		return strings.Join(out, ", ")
	}
	messages := func(n int) string {
		if n == 1 {
			return "1 message"
		}
		return fmt.Sprintf("%d messages", n)
	}
	switch tool {
	case "list_accounts":
		return "listed the accounts"
	case "list_folders":
		return "listed the folders"
	case "create_folder":
		return "created folder " + str("name")
	case "rename_folder":
		return "renamed folder " + str("folder") + " → " + str("new_name")
	case "delete_folder":
		return "deleted folder " + str("folder")
	case "list_messages":
		return "listed messages in " + folder("folder")
	case "search_messages":
		var criteria []string
		for _, k := range []string{"from", "to", "cc", "subject", "body", "text", "date_from", "date_to", "unread_only", "flagged", "answered",
			"has_attachment", "larger", "smaller", "gmail_query"} {
			if _, ok := args[k]; ok {
				criteria = append(criteria, k)
			}
		}
		return "searched " + folder("folder") + " by " + orNone(strings.Join(criteria, ", "))
	case "get_message":
		return "read message " + num("uid") + " in " + folder("folder")
	case "get_thread":
		return "read the conversation of message " + num("uid") + " in " + folder("folder")
	case "list_new_messages":
		if n := count("folders"); n > 0 {
			return fmt.Sprintf("looked for new mail in %d folder(s)", n)
		}
		return "looked for new mail in INBOX"
	case "get_attachment":
		return "downloaded attachment " + str("part") + " of message " + num("uid") + " in " + folder("folder")
	case "read_attachment":
		return "read the text of attachment " + str("part") + " of message " + num("uid") + " in " + folder("folder")
	case "send_message":
		return "sent \"" + str("subject") + "\" to " + list("to")
	case "reply_message":
		return "replied to message " + num("uid") + " in " + folder("folder")
	case "create_draft":
		if _, ok := args["reply_to_uid"]; ok {
			return "saved a draft reply to message " + num("reply_to_uid") + " in " + folder("folder")
		}
		return "saved a draft \"" + str("subject") + "\""
	case "update_draft":
		return "replaced draft " + num("uid")
	case "send_draft":
		return "sent draft " + num("uid")
	case "cancel_send":
		return "cancelled outbox message " + str("outbox_id")
	case "get_send_status":
		return "checked outbox message " + str("outbox_id")
	case "mark_read":
		return "marked " + messages(count("uids")) + " read in " + folder("folder")
	case "mark_unread":
		return "marked " + messages(count("uids")) + " unread in " + folder("folder")
	case "flag_messages":
		return "flagged " + messages(count("uids")) + " in " + folder("folder")
	case "unflag_messages":
		return "unflagged " + messages(count("uids")) + " in " + folder("folder")
	case "set_flags":
		return "changed the flags of " + messages(count("uids")) + " in " + folder("folder") + " (+" + list("add") + " −" + list("remove") + ")"
	case "move_messages":
		return "moved " + messages(count("uids")) + " " + folder("folder") + " → " + str("destination")
	case "copy_messages":
		return "copied " + messages(count("uids")) + " " + folder("folder") + " → " + str("destination")
	case "delete_messages":
		if p, _ := args["permanent"].(bool); p {
			return "deleted " + messages(count("uids")) + " in " + folder("folder") + " for good"
		}
		return "deleted " + messages(count("uids")) + " in " + folder("folder") + " (to Trash)"
	}
	return "called " + tool
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// cleanSummary keeps a value on one line.
func cleanSummary(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == 0x2028 || r == 0x2029 }), " ")
}
