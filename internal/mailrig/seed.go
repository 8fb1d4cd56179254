package mailrig

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SeedOptions tunes Seed. The zero value is valid.
type SeedOptions struct {
	// Seed selects the corpus; equal options, user, folder and n give
	// byte-identical messages.
	Seed int64
	// Newest is the date of the newest message; zero means
	// 2025-06-30 09:00 UTC.
	Newest time.Time
	// Span is the period the dates spread over, ending at Newest; zero
	// means 180 days. Dates are at least one second apart.
	Span time.Duration
}

// SeededMessage describes one seeded message.
type SeededMessage struct {
	MessageID string    // without angle brackets
	Subject   string    // decoded Subject header
	From      string    // sender address
	Date      time.Time // Date header and IMAP INTERNALDATE
	Kind      string    // KindPlain, KindAlternative, KindMixed or KindNewsletter
	Charset   string    // charset of the first text/plain part
	Size      int       // bytes on disk, LF line ends
	Seen      bool
	Flagged   bool
	Answered  bool
}

// SeedResult reports what Seed wrote.
type SeedResult struct {
	// Folder is the mailbox name as given to Seed.
	Folder string
	// Messages are ordered oldest first with strictly increasing dates; in
	// a folder seeded once, IMAP UIDs follow this order.
	Messages []SeededMessage
	// Thread is one conversation of at least four messages (the longest
	// if none is that long), oldest first; each message after the first
	// has In-Reply-To set to the previous one and References to the
	// chain before it (at most its last ten Message-IDs).
	Thread []SeededMessage
}

// Newest returns the last (newest) seeded message, or the zero value if
// none was seeded.
func (s SeedResult) Newest() SeededMessage {
	if len(s.Messages) == 0 {
		return SeededMessage{}
	}
	return s.Messages[len(s.Messages)-1]
}

// defaultNewest anchors the default date range so corpora are reproducible.
var defaultNewest = time.Date(2025, 6, 30, 9, 0, 0, 0, time.UTC)

// seedCounter keeps Maildir file names unique across Seed calls.
var seedCounter atomic.Uint64

// Seed writes n generated messages straight into the Maildir of user's
// folder (INBOX, a special-use folder or any other name with "/" as
// hierarchy separator and no "."), creating the folder if needed, without
// going through SMTP or Dovecot. Files land in cur/ (via tmp/, as Maildir
// delivery does), owned by the mail user, named with their size and
// Maildir flags, and dated with the message date; Dovecot picks them up at
// its next sync of the folder. Clients may stay connected, even with the
// folder selected: already indexed messages keep their UIDs and the new
// ones get higher UIDs.
func (r *Rig) Seed(user, folder string, n int, opt SeedOptions) (SeedResult, error) {
	u, ok := r.User(user)
	if !ok {
		return SeedResult{}, fmt.Errorf("mailrig: seed: unknown user %q", user)
	}
	if n < 0 {
		return SeedResult{}, fmt.Errorf("mailrig: seed: negative count %d", n)
	}
	dir, err := r.ensureMaildir(u, folder)
	if err != nil {
		return SeedResult{}, fmt.Errorf("mailrig: seed %s %s: %w", u.Email, folder, err)
	}
	msgs := r.newPlanner(u, folder, opt).plan(n, cmp.Or(opt.Newest, defaultNewest), cmp.Or(opt.Span, 180*24*time.Hour))
	if err := writeMessages(dir, msgs); err != nil {
		return SeedResult{}, fmt.Errorf("mailrig: seed %s %s: %w", u.Email, folder, err)
	}
	return seedResult(folder, msgs), nil
}

// newPlanner prepares the corpus plan for u's folder: the other rig users
// (except sink) and outside contacts correspond with u.
func (r *Rig) newPlanner(u User, folder string, opt SeedOptions) *planner {
	p := &planner{
		rng:      rand.New(rand.NewPCG(uint64(opt.Seed), 0x5eed)),
		seed:     opt.Seed,
		owner:    person{strings.ToUpper(u.Name[:1]) + u.Name[1:], u.Email},
		ownSent:  folder == "Sent" || folder == "Drafts",
		idSuffix: idSuffix(u.Email, folder),
	}
	for _, o := range r.Users {
		if o.Email != u.Email && o.Name != SinkName {
			p.contacts = append(p.contacts, person{strings.ToUpper(o.Name[:1]) + o.Name[1:], o.Email})
		}
	}
	p.contacts = append(p.contacts, outsiders...)
	return p
}

// maildirPath maps a mailbox name to its directory in the Maildir++
// layout Dovecot uses here: INBOX is the Maildir root and "A/B" is ".A.B".
func maildirPath(root, folder string) (string, error) {
	if strings.EqualFold(folder, "INBOX") {
		return root, nil
	}
	if folder == "" || strings.Contains(folder, ".") || strings.HasPrefix(folder, "/") ||
		strings.HasSuffix(folder, "/") || strings.Contains(folder, "//") {
		return "", fmt.Errorf("folder name %q is not valid in the Maildir++ layout", folder)
	}
	return filepath.Join(root, "."+strings.ReplaceAll(folder, "/", ".")), nil
}

// ensureMaildir creates the user's home, Maildir root and the folder's
// cur, new and tmp directories, all owned by the mail user, and returns
// the folder directory.
func (r *Rig) ensureMaildir(u User, folder string) (string, error) {
	home := r.path("mail", u.Name)
	root := filepath.Join(home, "Maildir")
	dir, err := maildirPath(root, folder)
	if err != nil {
		return "", err
	}
	for _, d := range []string{home, root, dir, filepath.Join(dir, "cur"), filepath.Join(dir, "new"), filepath.Join(dir, "tmp")} {
		if err := mkdirMail(d); err != nil {
			return "", err
		}
	}
	if dir != root {
		marker := filepath.Join(dir, "maildirfolder")
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			return "", fmt.Errorf("create %s: %w", marker, err)
		}
		if err := os.Chown(marker, mailUID, mailGID); err != nil {
			return "", fmt.Errorf("chown %s: %w", marker, err)
		}
	}
	return dir, nil
}

// mkdirMail creates dir owned by the mail user unless it exists.
func mkdirMail(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chown(dir, mailUID, mailGID); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	return nil
}

// writeMessages renders and stores msgs with one worker per CPU.
func writeMessages(dir string, msgs []plannedMessage) error {
	var next atomic.Int64
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(msgs)); i = next.Add(1) - 1 {
				if err := writeMessage(dir, &msgs[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeMessage renders m into tmp/ and renames it into cur/, as Maildir
// delivery does, so a concurrent mailbox sync never sees it incomplete.
// The name carries its date, size (S=), CRLF size (W=) and flags.
func writeMessage(dir string, m *plannedMessage) error {
	data := render(m)
	m.Size = len(data)
	name := fmt.Sprintf("%d.P%dQ%d.mailrig,S=%d,W=%d:2,%s",
		m.Date.Unix(), os.Getpid(), seedCounter.Add(1),
		len(data), len(data)+bytes.Count(data, []byte("\n")), m.maildirFlags())
	tmp := filepath.Join(dir, "tmp", name)
	if err := writeMailFile(tmp, data, m.Date); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "cur", name)); err != nil {
		return fmt.Errorf("move message into cur: %w", err)
	}
	return nil
}

// writeMailFile creates path with data, owned by the mail user and with
// mtime set to date (Dovecot's INTERNALDATE for Maildir).
func writeMailFile(path string, data []byte, date time.Time) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create message file: %w", err)
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Chown(mailUID, mailGID), f.Close())
	if err != nil {
		return fmt.Errorf("write message file %s: %w", path, err)
	}
	if err := os.Chtimes(path, date, date); err != nil {
		return fmt.Errorf("date message file %s: %w", path, err)
	}
	return nil
}

// seedResult reports msgs and picks the first planned thread with at
// least four messages, or else the longest one.
func seedResult(folder string, msgs []plannedMessage) SeedResult {
	res := SeedResult{Folder: folder, Messages: make([]SeededMessage, len(msgs))}
	threads := map[int][]SeededMessage{}
	for i, m := range msgs {
		res.Messages[i] = m.SeededMessage
		threads[m.thread] = append(threads[m.thread], m.SeededMessage)
	}
	for _, id := range slices.Sorted(maps.Keys(threads)) {
		if len(threads[id]) >= 4 {
			res.Thread = threads[id]
			return res
		}
		if len(threads[id]) > len(res.Thread) {
			res.Thread = threads[id]
		}
	}
	return res
}
