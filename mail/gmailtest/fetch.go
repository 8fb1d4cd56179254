package gmailtest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// raw renders the message as RFC 5322 text with CRLF line ends.
func (m *Message) raw() string {
	if m.Raw != "" {
		return m.Raw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\n",
		m.MessageID, m.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"), m.From, m.To, m.Subject)
	if m.InReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\n", m.InReplyTo)
	}
	if len(m.References) > 0 {
		fmt.Fprintf(&b, "References: <%s>\r\n", strings.Join(m.References, "> <"))
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(m.Body, "\n", "\r\n") + "\r\n")
	return b.String()
}

func address(a string) string {
	local, domain, _ := strings.Cut(a, "@")
	return fmt.Sprintf("((NIL NIL %s %s))", quote(local), quote(domain))
}

func (m *Message) envelope() string {
	bracket := func(id string) string {
		if id == "" {
			return "NIL"
		}
		return quote("<" + id + ">")
	}
	return fmt.Sprintf("(%s %s %s %s %s %s NIL NIL %s %s)", quote(m.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700")),
		quote(m.Subject), address(m.From), address(m.From), address(m.From), address(m.To), bracket(m.InReplyTo), bracket(m.MessageID))
}

func (m *Message) bodyStructure() string {
	body := m.raw()
	body = body[strings.Index(body, "\r\n\r\n")+4:]
	return fmt.Sprintf(`("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" %d %d NIL NIL NIL NIL)`, len(body), strings.Count(body, "\n"))
}

var headerFields = regexp.MustCompile(`(?i)BODY\.PEEK\[HEADER\.FIELDS \(([^)]*)\)\]`)

// headerFields returns the message's header lines named in names, and
// the empty line that ends a header section.
func (m *Message) headerFields(names []string) string {
	head, _, _ := strings.Cut(m.raw(), "\r\n\r\n")
	var b strings.Builder
	for _, line := range strings.Split(head, "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
			b.WriteString(line + "\r\n")
		}
	}
	return b.String() + "\r\n"
}

func literal(s string) string { return fmt.Sprintf("{%d}\r\n%s", len(s), s) }

// fetch answers FETCH and UID FETCH for the items the engine asks for.
func (ss *session) fetch(tag, args string, byUID bool, fault Fault) bool {
	set, items, _ := strings.Cut(args, " ")
	items = strings.ToUpper(items)
	ss.s.mu.Lock()
	msgs, seqs := ss.selectedBy(set, byUID)
	type row struct {
		m   Message
		uid uint32
		seq int
	}
	rows := make([]row, len(msgs))
	for i, m := range msgs {
		rows[i] = row{m: m.Message, uid: m.uids[ss.selected], seq: seqs[i]}
		rows[i].m.Flags = append([]string(nil), m.Flags...)
	}
	ss.s.mu.Unlock()
	for _, r := range rows {
		parts := []string{fmt.Sprintf("UID %d", r.uid)}
		if fault == FaultDropMidFetch {
			ss.w.WriteString(fmt.Sprintf("* %d FETCH (UID %d FLAGS (", r.seq, r.uid))
			ss.w.Flush()
			return false
		}
		if strings.Contains(items, "FLAGS") {
			parts = append(parts, "FLAGS ("+strings.Join(r.m.Flags, " ")+")")
		}
		if strings.Contains(items, "X-GM-THRID") {
			parts = append(parts, fmt.Sprintf("X-GM-THRID %d", r.m.ThrID))
		}
		if strings.Contains(items, "INTERNALDATE") {
			parts = append(parts, "INTERNALDATE "+quote(r.m.Date.Format("02-Jan-2006 15:04:05 -0700")))
		}
		if strings.Contains(items, "RFC822.SIZE") {
			parts = append(parts, fmt.Sprintf("RFC822.SIZE %d", len(r.m.raw())))
		}
		if strings.Contains(items, "ENVELOPE") {
			parts = append(parts, "ENVELOPE "+r.m.envelope())
		}
		if strings.Contains(items, "BODYSTRUCTURE") {
			bs := r.m.bodyStructure()
			if fault == FaultBadBodyStructure {
				bs = `("TEXT" "PLAIN" (("CHARSET" NIL NIL "7BIT" x))`
			}
			parts = append(parts, "BODYSTRUCTURE "+bs)
		}
		if m := headerFields.FindStringSubmatch(args); m != nil {
			parts = append(parts, "BODY[HEADER.FIELDS ("+m[1]+")] "+literal(r.m.headerFields(strings.Fields(strings.ReplaceAll(m[1], `"`, "")))))
		}
		if strings.Contains(items, "BODY.PEEK[]") {
			parts = append(parts, "BODY[] "+literal(r.m.raw()))
		}
		ss.send(fmt.Sprintf("* %d FETCH (%s)", r.seq, strings.Join(parts, " ")))
	}
	ss.send(tag + " OK Success")
	return true
}
