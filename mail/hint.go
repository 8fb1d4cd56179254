package mail

import (
	"errors"
	"fmt"
	"strings"
)

// reconnect is what to do about an OAuth account whose sign-in failed.
const reconnect = "Ask the person to open Accounts in the imap-mcp web UI and press Reconnect on this account."

// Hint returns one sentence telling a person or a model what to do about
// err, which came from an operation on acct (acct may be nil). It returns
// "" for errors with no useful advice.
func Hint(err error, acct *Account) string {
	var e *Error
	if !errors.As(err, &e) {
		return ""
	}
	var preset Preset
	found := false
	if acct != nil {
		preset, found = accountPreset(acct)
	}
	switch e.Kind {
	case KindWrongProtocol:
		if strings.HasPrefix(e.Op, "imap") {
			return "This port answers like an SMTP server, not IMAP: the IMAP and SMTP ports look swapped. IMAP uses 993 (tls) or 143 (starttls)."
		}
		return "This port answers like an IMAP server, not SMTP: the IMAP and SMTP ports look swapped. SMTP submission uses 465 (tls) or 587 (starttls)."
	case KindReauth:
		return "The provider no longer accepts this account's sign-in (access was withdrawn, the password changed or consent expired). " + reconnect
	case KindAuth:
		if acct != nil && acct.OAuth != nil {
			return "The server refused the account's OAuth token. " + reconnect
		}
		if found && preset.Key == "outlook" {
			return "Microsoft 365 and Outlook.com refuse passwords for IMAP and SMTP: add the account with \"Sign in with Microsoft\" instead (the operator must configure it, see the README)."
		}
		if found && preset.AppPassword {
			return fmt.Sprintf("%s refused the password. With two-step verification on, %s needs an app password instead of the account password: %s",
				preset.Name, preset.Name, preset.Help)
		}
		return "The server refused the user name or password. Check both; some providers need an app password or IMAP access enabled first."
	case KindTLSMismatch:
		return "The TLS mode does not match the port: use tls with 993 (IMAP) or 465 (SMTP), starttls with 143 (IMAP) or 587 (SMTP)."
	case KindCertificate:
		return "The server's certificate could not be verified (wrong host name, expired or self-signed). Use the host name the certificate is issued for, or trust its CA with MAIL_CA_FILE."
	case KindDNS:
		return "The host name does not resolve. Check its spelling."
	case KindRefused:
		return "Nothing accepts connections at that host and port. Check the port, and that the server allows connections from here."
	case KindTimeout:
		switch {
		case strings.Contains(e.Op, "greeting") || strings.Contains(e.Op, "starttls") || strings.Contains(e.Op, "tls handshake"):
			return "The server took the connection but did not start the conversation in time: the port may expect the other TLS mode " +
				"(tls on 993/465, starttls on 143/587), or belong to another service."
		case strings.Contains(e.Op, "login") || strings.Contains(e.Op, "auth"):
			return "The server did not answer the sign-in in time. It may be overloaded or throttling this address: try again later."
		}
		return "The server did not answer in time. Check the host and port (a firewall may drop the connection) or try again later."
	case KindForbidden:
		return "The host resolves to a private or local address, which this instance refuses. An administrator can allow it with MAIL_ALLOW_PRIVATE_HOSTS=true."
	case KindNotFound:
		return "The folder, message or part does not exist. List folders or messages again to get current names and UIDs."
	case KindTemporary:
		return "The server reported a temporary problem. Try again in a moment."
	case KindUnsupported:
		if errors.Is(err, ErrNoTrash) {
			return "This account has no Trash folder. Delete permanently, or create a Trash folder first."
		}
		if e.Op == "smtp auth" {
			return "This SMTP port accepts no login (no AUTH), so it is probably for server-to-server mail (port 25). Use the submission port: 465 with tls or 587 with starttls."
		}
		return "The server lacks a feature this operation needs."
	}
	return ""
}
