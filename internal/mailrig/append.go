package mailrig

import (
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Appender delivers messages exactly as given into a rig user's folders
// by IMAP APPEND. It is not safe for concurrent use.
type Appender struct {
	c       *imapclient.Client
	folders map[string]bool
}

// Appender logs in as user (a Name or Email of the rig's users).
func (r *Rig) Appender(user string) (*Appender, error) {
	u, ok := r.User(user)
	if !ok {
		return nil, fmt.Errorf("mailrig: no user %q", user)
	}
	c, err := imapclient.DialStartTLS(r.IMAPAddr(), &imapclient.Options{TLSConfig: r.TLSConfig()})
	if err != nil {
		return nil, err
	}
	if err := c.Login(u.Email, u.Password).Wait(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return &Appender{c: c, folders: map[string]bool{}}, nil
}

// Append stores raw in folder, creating the folder on first use unless
// it exists, and
// returns the new message's UID.
func (a *Appender) Append(folder string, raw []byte) (uint32, error) {
	if !a.folders[folder] {
		var exists *imap.Error
		if err := a.c.Create(folder, nil).Wait(); err != nil && !(errors.As(err, &exists) && exists.Code == imap.ResponseCodeAlreadyExists) {
			return 0, fmt.Errorf("CREATE %s: %w", folder, err)
		}
		a.folders[folder] = true
	}
	cmd := a.c.Append(folder, int64(len(raw)), nil)
	_, werr := cmd.Write(raw)
	cerr := cmd.Close()
	data, err := cmd.Wait()
	if err = errors.Join(werr, cerr, err); err != nil {
		return 0, err
	}
	if data.UID == 0 {
		return 0, errors.New("APPEND: no APPENDUID")
	}
	return uint32(data.UID), nil
}

// Close logs out.
func (a *Appender) Close() error { return a.c.Close() }
