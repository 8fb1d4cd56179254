package mail

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// smtpSession is a connected, authenticated SMTP submission session.
type smtpSession struct {
	client *smtp.Client
	dc     *deadlineConn
	addr   string
	stop   func() bool // stops aborting I/O on context cancellation
}

// dialSMTP connects to acct's submission server, secures it (STARTTLS is
// required in starttls mode, never skipped) and authenticates. An OAuth
// account whose token the server refuses tries once more with a renewed
// token.
func (d dialer) dialSMTP(ctx context.Context, acct *Account) (*smtpSession, error) {
	return withToken(ctx, acct, "smtp", func(tok string) (*smtpSession, error) { return d.openSMTP(ctx, acct, tok) })
}

// openSMTP is one attempt of dialSMTP; tok is the bearer token of an
// OAuth account.
func (d dialer) openSMTP(ctx context.Context, acct *Account, tok string) (*smtpSession, error) {
	ep := acct.SMTP
	conn, dc, err := d.dialTCP(ctx, "smtp", ep)
	if err != nil {
		return nil, err
	}
	s := &smtpSession{dc: dc, addr: ep.Addr(), stop: dc.abortOnCancel(ctx)}
	s.client, err = smtp.NewClient(conn, ep.Host)
	if err != nil {
		s.stop()
		_ = conn.Close()
		return nil, greetingError("smtp greeting", ep, err)
	}
	dc.setLimit(deadline(ctx, d.cfg.Login))
	if err := s.client.Hello("localhost"); err != nil {
		s.close()
		return nil, wrap("smtp ehlo", s.addr, err)
	}
	if ep.TLS == TLSStartTLS {
		if ok, _ := s.client.Extension("STARTTLS"); !ok {
			s.close()
			return nil, &Error{Kind: KindTLSMismatch, Op: "smtp starttls", Addr: s.addr,
				Err: errors.New("server does not offer STARTTLS; not continuing without TLS")}
		}
		if err := s.client.StartTLS(d.tlsConfig(ep.Host)); err != nil {
			s.close()
			return nil, wrap("smtp starttls", s.addr, err)
		}
	}
	if ok, _ := s.client.Extension("AUTH"); !ok {
		s.close()
		return nil, &Error{Kind: KindUnsupported, Op: "smtp auth", Addr: s.addr, Err: errors.New("server offers no AUTH")}
	}
	user, password := acct.smtpLogin()
	auth := smtp.PlainAuth("", user, password, ep.Host, ep.TLS == TLSNone)
	if acct.OAuth != nil {
		auth = smtpOAuth(acct, tok)
	}
	if err := s.client.Auth(auth); err != nil {
		s.close()
		var tpErr *textproto.Error
		if errors.As(err, &tpErr) && tpErr.Code/100 == 5 {
			return nil, &Error{Kind: KindAuth, Op: "smtp auth", Addr: s.addr, Err: err}
		}
		return nil, wrap("smtp auth", s.addr, err)
	}
	return s, nil
}

// send submits raw to rcpts under the submission timeout.
func (s *smtpSession) send(ctx context.Context, timeout time.Duration, from string, rcpts []string, raw []byte, committing func() error) error {
	s.dc.setLimit(deadline(ctx, timeout))
	if err := s.client.Mail(from); err != nil {
		return wrap("smtp mail from", s.addr, err)
	}
	for _, r := range rcpts {
		if err := s.client.Rcpt(r); err != nil {
			return wrap("smtp rcpt to", s.addr, fmt.Errorf("%s: %w", r, err))
		}
	}
	w, err := s.client.Data()
	if err != nil {
		return wrap("smtp data", s.addr, err)
	}
	if _, err := w.Write(raw); err != nil {
		return wrap("smtp data", s.addr, err)
	}
	if committing != nil {
		// The server takes the message only at the end of DATA: until
		// then an abort leaves nothing delivered.
		if err := committing(); err != nil {
			return err
		}
	}
	return wrap("smtp data", s.addr, w.Close())
}

func (s *smtpSession) close() {
	s.stop()
	s.dc.setLimit(time.Now().Add(time.Second))
	_ = s.client.Quit()
	_ = s.client.Close()
}
