package mail

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CheckResult is the outcome of one half of a connection test.
type CheckResult struct {
	OK       bool
	Duration time.Duration
	Err      error  // nil when OK
	Hint     string // what to do about Err, for a person or a model
}

// TestResult holds the IMAP and SMTP checks of TestConnection.
type TestResult struct {
	IMAP CheckResult
	SMTP CheckResult
}

// TestConnection logs in to IMAP and sends NOOP, and separately connects
// to SMTP, says EHLO and authenticates, without sending anything. It
// always opens fresh connections and never uses or fills the pool. Both
// checks run even if one fails.
func (e *Engine) TestConnection(ctx context.Context, acct *Account) TestResult {
	var res TestResult
	start := time.Now()
	c, err := e.dial.dialIMAP(ctx, acct)
	if err == nil {
		err = c.do("noop", func() error { return c.client.Noop().Wait() })
		c.close()
	}
	res.IMAP = checkResult(err, acct, start)
	start = time.Now()
	s, err := e.dial.dialSMTP(ctx, acct)
	if err == nil {
		s.close()
	}
	res.SMTP = checkResult(err, acct, start)
	return res
}

// checkResult always explains a failure: the hint, or else the kind of
// error and what the engine was doing.
func checkResult(err error, acct *Account, start time.Time) CheckResult {
	r := CheckResult{OK: err == nil, Duration: time.Since(start), Err: err, Hint: Hint(err, acct)}
	var e *Error
	if err != nil && r.Hint == "" {
		r.Hint = "The check failed."
		if errors.As(err, &e) {
			r.Hint = fmt.Sprintf("The check failed (%s during %s).", e.Kind, e.Op)
		}
	}
	return r
}
