package mailrig

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Message kinds produced by the seeder.
const (
	KindPlain       = "plain"       // text/plain, in one of several charsets
	KindAlternative = "alternative" // multipart/alternative text + HTML
	KindMixed       = "mixed"       // multipart/mixed with attachments
	KindNewsletter  = "newsletter"  // large HTML newsletter, 100 KB and more
)

// newsletterEvery makes every 50th thread (outside Sent and Drafts) a
// single large newsletter.
const newsletterEvery = 50

// plannedMessage is everything about a message decided before rendering.
// Rendering uses only the plan and its own random stream, so messages can
// be rendered in parallel and still be reproducible.
type plannedMessage struct {
	SeededMessage
	thread     int
	from, to   person
	cc         []person
	inReplyTo  string
	references []string
	parentSeed uint64 // render seed of the message replied to, if any
	seed       uint64 // render seed
	rawTime    float64
}

// planner builds the corpus for one Seed call.
type planner struct {
	rng      *rand.Rand
	seed     int64
	owner    person
	contacts []person
	ownSent  bool   // the folder holds the owner's own messages
	idSuffix string // makes Message-IDs unique per user and folder
}

// plan returns n messages ordered oldest first with strictly increasing
// dates, the last one at newest, spread over about span.
func (p *planner) plan(n int, newest time.Time, span time.Duration) []plannedMessage {
	var msgs []plannedMessage
	for thread := 0; len(msgs) < n; thread++ {
		if thread%newsletterEvery == 3 && !p.ownSent {
			msgs = append(msgs, p.newsletter(thread))
			continue
		}
		msgs = append(msgs, p.thread(thread, min(p.threadSize(), n-len(msgs)))...)
	}
	slices.SortStableFunc(msgs, func(a, b plannedMessage) int {
		switch {
		case a.rawTime < b.rawTime:
			return -1
		case a.rawTime > b.rawTime:
			return 1
		}
		return 0
	})
	p.assignDates(msgs, newest, span)
	p.assignFlags(msgs)
	return msgs
}

// threadSize is 1 for about 45% of threads and 2 to 8 otherwise.
func (p *planner) threadSize() int {
	if p.rng.IntN(100) < 45 {
		return 1
	}
	return 2 + p.rng.IntN(7)
}

// conversation carries a thread's state from one message to the next.
type conversation struct {
	id      int
	people  []person // the owner first
	subject string
	kind    string
	refs    []string        // Message-IDs so far, oldest first
	prev    *plannedMessage // nil before the first message
	rawTime float64         // ordering key, in years from an arbitrary origin
}

// thread plans one conversation of size messages.
func (p *planner) thread(id, size int) []plannedMessage {
	c := &conversation{
		id:      id,
		people:  p.participants(),
		subject: subjects[p.rng.IntN(len(subjects))],
		kind:    p.rootKind(),
		rawTime: p.rng.Float64(),
	}
	msgs := make([]plannedMessage, size)
	for i := range msgs {
		msgs[i] = p.next(c)
		c.prev = &msgs[i]
		c.refs = append(c.refs, msgs[i].MessageID)
		gap := 10*time.Minute + time.Duration(p.rng.Int64N(int64(72*time.Hour)))
		c.rawTime += gap.Hours() / (24 * 365)
	}
	return msgs
}

// next plans the conversation's next message: its root, or a reply to the
// previous message, quoting it, by another participant.
func (p *planner) next(c *conversation) plannedMessage {
	from, to := p.correspondents(c)
	m := plannedMessage{thread: c.id, from: from, to: to, seed: p.rng.Uint64(), rawTime: c.rawTime}
	m.MessageID = fmt.Sprintf("t%d.%d.%d.%s@%s", c.id, len(c.refs), p.seed, p.idSuffix, Domain)
	m.From, m.Subject, m.Kind = from.Addr, c.subject, c.kind
	if c.prev != nil {
		m.Subject = "Re: " + c.subject
		m.Kind = []string{KindPlain, KindAlternative}[p.rng.IntN(2)]
		m.inReplyTo = c.prev.MessageID
		m.references = slices.Clone(c.refs[max(0, len(c.refs)-10):])
		m.parentSeed = c.prev.seed
	}
	if len(c.people) > 2 && p.rng.IntN(3) == 0 {
		m.cc = []person{c.people[len(c.people)-1]}
	}
	return m
}

// correspondents picks the sender (always the owner in Sent and Drafts,
// never the previous sender otherwise) and the recipient (the previous
// sender, or the owner for a root), never the same person twice.
func (p *planner) correspondents(c *conversation) (from, to person) {
	from = p.owner
	if !p.ownSent {
		from = c.people[p.rng.IntN(len(c.people))]
		for c.prev != nil && from == c.prev.from {
			from = c.people[p.rng.IntN(len(c.people))]
		}
	}
	to = c.people[0]
	if c.prev != nil {
		to = c.prev.from
	}
	if to == from {
		to = c.people[(slices.Index(c.people, from)+1)%len(c.people)]
	}
	return from, to
}

// participants returns the owner first, then one to three contacts.
func (p *planner) participants() []person {
	people := []person{p.owner}
	for _, i := range p.rng.Perm(len(p.contacts))[:1+p.rng.IntN(3)] {
		people = append(people, p.contacts[i])
	}
	return people
}

func (p *planner) rootKind() string {
	switch r := p.rng.IntN(100); {
	case r < 40:
		return KindPlain
	case r < 70:
		return KindAlternative
	default:
		return KindMixed
	}
}

func (p *planner) newsletter(id int) plannedMessage {
	m := plannedMessage{thread: id, from: newsletterSender, to: p.owner, seed: p.rng.Uint64(), rawTime: p.rng.Float64()}
	m.MessageID = fmt.Sprintf("news%d.%d.%s@example.com", id, p.seed, p.idSuffix)
	m.Subject = fmt.Sprintf("Example Weekly #%d: %s", 100+id%900, subjects[p.rng.IntN(len(subjects))])
	m.Kind, m.From = KindNewsletter, newsletterSender.Addr
	return m
}

// assignDates spreads the sorted messages evenly over span, with jitter
// smaller than the spacing so dates stay strictly increasing.
func (p *planner) assignDates(msgs []plannedMessage, newest time.Time, span time.Duration) {
	n := len(msgs)
	step := max(span/time.Duration(max(n, 1)), time.Second)
	oldest := newest.Add(-step * time.Duration(n-1))
	for i := range msgs {
		jitter := time.Duration(0)
		if i != n-1 && step > 2*time.Second {
			jitter = time.Duration(p.rng.Int64N(int64(step / 2)))
		}
		msgs[i].Date = oldest.Add(step*time.Duration(i) + jitter).Truncate(time.Second)
	}
}

// assignFlags marks most older messages seen, the newest tenth mostly
// unread, about 4% flagged, and answered where the owner replied next.
func (p *planner) assignFlags(msgs []plannedMessage) {
	n := len(msgs)
	nextByOwner := map[string]bool{}
	for _, m := range msgs {
		if m.inReplyTo != "" && m.from == p.owner {
			nextByOwner[m.inReplyTo] = true
		}
	}
	for i := range msgs {
		m := &msgs[i]
		seenPct := 95
		if i >= n-n/10 {
			seenPct = 30
		}
		m.Seen = p.ownSent || p.rng.IntN(100) < seenPct
		m.Flagged = p.rng.IntN(100) < 4
		m.Answered = nextByOwner[m.MessageID] && m.from != p.owner
	}
}

// maildirFlags returns the Maildir info flags in ASCII order.
func (m *plannedMessage) maildirFlags() string {
	var f strings.Builder
	if m.Flagged {
		f.WriteByte('F')
	}
	if m.Answered {
		f.WriteByte('R')
	}
	if m.Seen {
		f.WriteByte('S')
	}
	return f.String()
}

// idSuffix derives a short stable token from user and folder.
func idSuffix(user, folder string) string {
	h := fnv.New32a()
	h.Write([]byte(user + "\x00" + folder))
	return fmt.Sprintf("%08x", h.Sum32())
}
