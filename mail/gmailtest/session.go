package gmailtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// session is one client connection.
type session struct {
	s        *Server
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	authed   bool
	selected string
}

func (ss *session) send(lines ...string) {
	for _, l := range lines {
		ss.w.WriteString(l + "\r\n")
	}
	ss.w.Flush()
}

var literalRE = regexp.MustCompile(`\{(\d+)(\+?)\}$`)

// readCommand reads one command line, inlining literals as quoted
// strings.
func (ss *session) readCommand() (string, error) {
	var b strings.Builder
	for {
		line, err := ss.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		m := literalRE.FindStringSubmatch(line)
		if m == nil {
			b.WriteString(line)
			return b.String(), nil
		}
		b.WriteString(line[:len(line)-len(m[0])])
		if m[2] == "" {
			ss.send("+ go ahead")
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(ss.r, lit); err != nil {
			return "", err
		}
		b.WriteString(quote(string(lit)))
	}
}

// fields splits arguments into atoms, unquoted strings and raw
// parenthesized groups.
func fields(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			out = append(out, b.String())
			i = j + 1
		case c == '(':
			depth, j := 0, i
			for ; j < len(s); j++ {
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			out = append(out, s[i:min(j+1, len(s))])
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' {
				if s[j] == '[' {
					for j < len(s) && s[j] != ']' {
						j++
					}
				}
				j++
			}
			out = append(out, s[i:min(j, len(s))])
			i = j
		}
	}
	return out
}

// handle answers one command; false ends the session.
func (ss *session) handle(line string) bool {
	tag, rest, _ := strings.Cut(line, " ")
	cmd, args, _ := strings.Cut(rest, " ")
	cmd = strings.ToUpper(cmd)
	uid := false
	if cmd == "UID" {
		uid = true
		cmd, args, _ = strings.Cut(args, " ")
		cmd = strings.ToUpper(cmd)
	}
	ok := func(text string) { ss.send(tag + " OK " + text) }
	bad := func() { ss.send(tag + " BAD Could not parse command") }
	if !ss.authed && cmd != "CAPABILITY" && cmd != "LOGIN" && cmd != "LOGOUT" && cmd != "NOOP" {
		bad()
		return true
	}
	ss.s.mu.Lock()
	fault, delay := ss.s.fault, ss.s.Delay
	ss.s.mu.Unlock()
	switch {
	case cmd == "CAPABILITY":
		if ss.authed {
			ss.send("* CAPABILITY " + Capabilities)
		} else {
			ss.send("* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN")
		}
		ok("Thats all she wrote! fake1234")
	case cmd == "LOGIN":
		f := fields(args)
		if len(f) != 2 || f[0] != ss.s.User || f[1] != ss.s.Password {
			ss.send(tag + " NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
			return true
		}
		ss.authed = true
		ok("[CAPABILITY " + Capabilities + "] " + ss.s.User + " authenticated (Success)")
	case cmd == "NOOP":
		ok("Success")
	case cmd == "LOGOUT":
		ss.send("* BYE LOGOUT Requested", tag+" OK 73 good day (Success)")
		return false
	case cmd == "LIST":
		ss.list(fields(args))
		ok("Success")
	case cmd == "STATUS":
		ss.status(tag, fields(args))
	case cmd == "SELECT" || cmd == "EXAMINE":
		ss.selectFolder(tag, cmd, fields(args))
	case cmd == "APPEND":
		ss.append(tag, fields(args))
	case cmd == "UNSELECT":
		ss.selected = ""
		ok("Returned to authenticated state. (Success)")
	case uid && cmd == "SEARCH" && ss.selected != "":
		ss.search(tag, fields(args), fault)
	case cmd == "FETCH" && ss.selected != "":
		if fault == FaultSlow {
			time.Sleep(delay)
		}
		return ss.fetch(tag, args, uid, fault)
	case uid && cmd == "STORE" && ss.selected != "":
		ss.store(fields(args))
		ok("Success")
	case uid && cmd == "MOVE" && ss.selected != "":
		ss.move(tag, fields(args))
	case uid && cmd == "EXPUNGE" && ss.selected != "":
		ss.expunge(fields(args))
		ok("Success")
	default:
		bad()
	}
	return true
}

func (ss *session) list(args []string) {
	if len(args) >= 2 && args[1] == "" {
		ss.send(`* LIST (\Noselect) "/" ""`)
		return
	}
	for _, f := range folderAttrs {
		if len(args) >= 2 && args[1] != "*" && args[1] != f.name {
			continue
		}
		ss.send(fmt.Sprintf(`* LIST (%s) "/" %s`, f.attrs, quote(f.name)))
	}
}

func selectable(name string) bool {
	return slices.ContainsFunc(folderAttrs, func(f struct{ name, attrs string }) bool {
		return f.name == name && !strings.Contains(f.attrs, `\Noselect`)
	})
}

func (ss *session) status(tag string, args []string) {
	if len(args) < 1 || !selectable(args[0]) {
		ss.send(tag + " NO [NONEXISTENT] Unknown Mailbox")
		return
	}
	ss.s.mu.Lock()
	msgs := ss.s.folderMsgs(args[0])
	ss.s.mu.Unlock()
	unseen := 0
	for _, m := range msgs {
		if !slices.Contains(m.Flags, `\Seen`) {
			unseen++
		}
	}
	ss.send(fmt.Sprintf("* STATUS %s (MESSAGES %d UNSEEN %d)", quote(args[0]), len(msgs), unseen), tag+" OK Success")
}

func (ss *session) selectFolder(tag, cmd string, args []string) {
	if len(args) < 1 || !selectable(args[0]) {
		ss.selected = ""
		ss.send(tag + " NO [NONEXISTENT] Unknown Mailbox: " + strings.Join(args, " ") + " (Failure)")
		return
	}
	ss.selected = args[0]
	ss.s.mu.Lock()
	n, next := len(ss.s.folderMsgs(args[0])), ss.s.uidNext[args[0]]+1
	ss.s.mu.Unlock()
	mode := "READ-WRITE"
	if cmd == "EXAMINE" {
		mode = "READ-ONLY"
	}
	ss.send(`* FLAGS (\Answered \Flagged \Draft \Deleted \Seen $NotPhishing $Phishing)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Draft \Deleted \Seen $NotPhishing $Phishing \*)] Flags permitted.`,
		"* OK [UIDVALIDITY 1] UIDs valid.", fmt.Sprintf("* %d EXISTS", n), "* 0 RECENT",
		fmt.Sprintf("* OK [UIDNEXT %d] Predicted next UID.", next), "* OK [HIGHESTMODSEQ 1000]",
		tag+" OK ["+mode+"] "+args[0]+" selected. (Success)")
}

// inSet reports whether n is in an IMAP sequence set.
func inSet(set string, n, max uint32) bool {
	for _, r := range strings.Split(set, ",") {
		a, b, isRange := strings.Cut(r, ":")
		lo, hi := parseNum(a, max), parseNum(a, max)
		if isRange {
			hi = parseNum(b, max)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if n >= lo && n <= hi {
			return true
		}
	}
	return false
}

func parseNum(s string, max uint32) uint32 {
	if s == "*" {
		return max
	}
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}

// selectedIn returns the selected folder's messages whose UIDs are in
// set, with their sequence numbers. Callers hold s.mu.
func (ss *session) selectedIn(set string) ([]*stored, []int) {
	return ss.selectedBy(set, true)
}

// selectedBy is selectedIn for a UID set (byUID) or a sequence set.
func (ss *session) selectedBy(set string, byUID bool) ([]*stored, []int) {
	all := ss.s.folderMsgs(ss.selected)
	max := uint32(len(all))
	if byUID && len(all) > 0 {
		max = all[len(all)-1].uids[ss.selected]
	}
	var out []*stored
	var seqs []int
	for i, m := range all {
		n := uint32(i + 1)
		if byUID {
			n = m.uids[ss.selected]
		}
		if inSet(set, n, max) {
			out, seqs = append(out, m), append(seqs, i+1)
		}
	}
	return out, seqs
}

func (ss *session) search(tag string, args []string, fault Fault) {
	if len(args) >= 2 && strings.EqualFold(args[0], "CHARSET") {
		if fault == FaultBadCharset {
			ss.send(tag + " NO [BADCHARSET (US-ASCII)] Unsupported charset")
			return
		}
		args = args[2:]
	}
	var match func(m *stored) bool
	switch {
	case len(args) == 1 && strings.EqualFold(args[0], "ALL"):
		match = func(*stored) bool { return true }
	case len(args) == 2 && strings.EqualFold(args[0], "UID"):
		all := ss.s.folderMsgs(ss.selected)
		var max uint32
		if len(all) > 0 {
			max = all[len(all)-1].uids[ss.selected]
		}
		match = func(m *stored) bool { return inSet(args[1], m.uids[ss.selected], max) }
	case len(args) == 2 && strings.EqualFold(args[0], "X-GM-THRID"):
		id, _ := strconv.ParseUint(args[1], 10, 64)
		match = func(m *stored) bool { return m.ThrID == id }
	case len(args) == 2 && strings.EqualFold(args[0], "X-GM-RAW"):
		match = rawMatcher(args[1])
	case len(args) == 2 && (strings.EqualFold(args[0], "SUBJECT") || strings.EqualFold(args[0], "FROM")):
		match = rawMatcher(strings.ToLower(args[0]) + ":" + strings.ReplaceAll(args[1], " ", ""))
	default:
		ss.send(tag + " BAD Could not parse command")
		return
	}
	ss.s.mu.Lock()
	var uids []string
	for _, m := range ss.s.folderMsgs(ss.selected) {
		if match(m) {
			uids = append(uids, strconv.Itoa(int(m.uids[ss.selected])))
		}
	}
	ss.s.mu.Unlock()
	ss.send(strings.TrimSpace("* SEARCH "+strings.Join(uids, " ")), tag+" OK SEARCH completed (Success)")
}

// rawMatcher implements a little of Gmail's search syntax: words that
// must all appear, and from:, to:, subject: terms.
func rawMatcher(q string) func(*stored) bool {
	terms := strings.Fields(strings.ToLower(q))
	return func(m *stored) bool {
		for _, t := range terms {
			field, word, ok := strings.Cut(t, ":")
			var hay string
			switch {
			case ok && field == "from":
				hay = m.From
			case ok && field == "to":
				hay = m.To
			case ok && field == "subject":
				hay = m.Subject
			default:
				word, hay = t, m.From+" "+m.To+" "+m.Subject+" "+m.Body
			}
			if !strings.Contains(strings.ToLower(hay), word) {
				return false
			}
		}
		return true
	}
}

func (ss *session) store(args []string) {
	if len(args) < 3 {
		return
	}
	flags := strings.Fields(strings.Trim(args[2], "()"))
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	msgs, _ := ss.selectedIn(args[0])
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(args[1], "+"):
			for _, f := range flags {
				if !slices.Contains(m.Flags, f) {
					m.Flags = append(m.Flags, f)
				}
			}
		case strings.HasPrefix(args[1], "-"):
			m.Flags = slices.DeleteFunc(m.Flags, func(f string) bool { return slices.Contains(flags, f) })
		}
	}
}

// move applies Gmail's semantics: moving to Trash removes every label;
// moving elsewhere swaps the source label for the destination's.
func (ss *session) move(tag string, args []string) {
	if len(args) < 2 || !selectable(args[1]) {
		ss.send(tag + " NO [TRYCREATE] Folder doesn't exist. (Failure)")
		return
	}
	dest := args[1]
	ss.s.mu.Lock()
	msgs, seqs := ss.selectedIn(args[0])
	var src, dst []string
	for _, m := range msgs {
		src = append(src, strconv.Itoa(int(m.uids[ss.selected])))
		if dest == Trash {
			clear(m.uids)
		} else if ss.selected != AllMail {
			delete(m.uids, ss.selected)
		}
		ss.s.label(m, dest)
		dst = append(dst, strconv.Itoa(int(m.uids[dest])))
	}
	ss.s.mu.Unlock()
	if len(msgs) > 0 {
		ss.send(fmt.Sprintf("* OK [COPYUID 1 %s %s]", strings.Join(src, ","), strings.Join(dst, ",")))
	}
	for i := len(seqs) - 1; i >= 0; i-- {
		ss.send(fmt.Sprintf("* %d EXPUNGE", seqs[i]))
	}
	ss.send(tag + " OK Success")
}

// expunge removes \Deleted messages of set from the selected folder: for
// good from Trash, as a label removal elsewhere.
func (ss *session) expunge(args []string) {
	if len(args) < 1 {
		return
	}
	ss.s.mu.Lock()
	msgs, seqs := ss.selectedIn(args[0])
	var gone []int
	for i, m := range msgs {
		if !slices.Contains(m.Flags, `\Deleted`) {
			continue
		}
		if ss.selected == Trash {
			clear(m.uids)
		} else {
			delete(m.uids, ss.selected)
		}
		m.Flags = slices.DeleteFunc(m.Flags, func(f string) bool { return f == `\Deleted` })
		gone = append(gone, seqs[i])
	}
	ss.s.msgs = slices.DeleteFunc(ss.s.msgs, func(m *stored) bool { return len(m.uids) == 0 })
	ss.s.mu.Unlock()
	for i := len(gone) - 1; i >= 0; i-- {
		ss.send(fmt.Sprintf("* %d EXPUNGE", gone[i]))
	}
}

// append stores a message as Gmail does: in the folder's label and All
// Mail, answering with APPENDUID.
func (ss *session) append(tag string, args []string) {
	if len(args) < 2 || !selectable(args[0]) {
		ss.send(tag + " NO [TRYCREATE] Folder doesn't exist. (Failure)")
		return
	}
	raw := args[len(args)-1]
	var flags []string
	if strings.HasPrefix(args[1], "(") {
		flags = strings.Fields(strings.Trim(args[1], "()"))
	}
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		ss.send(tag + " NO [CANNOT] Message is not RFC 5322 (Failure)")
		return
	}
	body, _ := io.ReadAll(msg.Body)
	plain := func(field string) string {
		if a, err := mail.ParseAddress(msg.Header.Get(field)); err == nil {
			return a.Address
		}
		return ""
	}
	ids := func(field string) []string {
		var out []string
		for _, f := range strings.Fields(msg.Header.Get(field)) {
			out = append(out, strings.Trim(f, "<>"))
		}
		return out
	}
	m := Message{MessageID: strings.Trim(msg.Header.Get("Message-Id"), "<> "), From: plain("From"), To: plain("To"),
		Subject: msg.Header.Get("Subject"), Body: string(body), Labels: []string{args[0]}, Flags: flags, Raw: raw, References: ids("References")}
	m.Date, _ = msg.Header.Date()
	if irt := ids("In-Reply-To"); len(irt) > 0 {
		m.InReplyTo = irt[0]
	}
	ss.s.Add(m)
	ss.s.mu.Lock()
	uid := ss.s.uidNext[args[0]]
	ss.s.mu.Unlock()
	ss.send(fmt.Sprintf("%s OK [APPENDUID 1 %d] (Success)", tag, uid))
}
