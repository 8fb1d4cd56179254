package mail

import (
	"fmt"
	"strings"
)

// Preset is a provider's known server settings.
type Preset struct {
	Key  string
	Name string
	IMAP Endpoint
	SMTP Endpoint
	// AppPassword says the provider needs an app password when two-step
	// verification is on (the usual reason a correct password fails).
	AppPassword bool
	// KeepsSentCopy says the provider files sent mail in Sent itself, so
	// the engine must not append another copy.
	KeepsSentCopy bool
	// Help links to the provider's page on app passwords or IMAP access.
	Help string
}

// Presets lists the known providers.
var Presets = []Preset{
	{Key: "gmail", Name: "Gmail", IMAP: Endpoint{"imap.gmail.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.gmail.com", 465, TLSImplicit},
		AppPassword: true, KeepsSentCopy: true, Help: "https://support.google.com/accounts/answer/185833"},
	{Key: "outlook", Name: "Outlook / Microsoft 365", IMAP: Endpoint{"outlook.office365.com", 993, TLSImplicit},
		SMTP: Endpoint{"smtp.office365.com", 587, TLSStartTLS}, KeepsSentCopy: true,
		Help: "https://support.microsoft.com/office/pop-imap-and-smtp-settings-8361e398-8af4-4e97-b147-6c6c4ac95353"},
	{Key: "icloud", Name: "iCloud Mail", IMAP: Endpoint{"imap.mail.me.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.mail.me.com", 587, TLSStartTLS},
		AppPassword: true, Help: "https://support.apple.com/102654"},
	{Key: "yahoo", Name: "Yahoo Mail", IMAP: Endpoint{"imap.mail.yahoo.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.mail.yahoo.com", 465, TLSImplicit},
		AppPassword: true, Help: "https://help.yahoo.com/kb/SLN15241.html"},
	{Key: "fastmail", Name: "Fastmail", IMAP: Endpoint{"imap.fastmail.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.fastmail.com", 465, TLSImplicit},
		AppPassword: true, Help: "https://www.fastmail.help/hc/en-us/articles/360058752854"},
	{Key: "ovh", Name: "OVHcloud (MX Plan)", IMAP: Endpoint{"ssl0.ovh.net", 993, TLSImplicit}, SMTP: Endpoint{"ssl0.ovh.net", 465, TLSImplicit}},
	{Key: "gmx", Name: "GMX", IMAP: Endpoint{"imap.gmx.net", 993, TLSImplicit}, SMTP: Endpoint{"mail.gmx.net", 587, TLSStartTLS}},
	{Key: "zoho", Name: "Zoho Mail", IMAP: Endpoint{"imap.zoho.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.zoho.com", 465, TLSImplicit},
		AppPassword: true},
	{Key: "aol", Name: "AOL Mail", IMAP: Endpoint{"imap.aol.com", 993, TLSImplicit}, SMTP: Endpoint{"smtp.aol.com", 465, TLSImplicit},
		AppPassword: true},
	{Key: "proton", Name: "Proton Mail Bridge", IMAP: Endpoint{"127.0.0.1", 1143, TLSStartTLS}, SMTP: Endpoint{"127.0.0.1", 1025, TLSStartTLS}},
}

// PresetFor returns the preset with key, or the one whose IMAP or SMTP
// host is host.
func PresetFor(keyOrHost string) (Preset, bool) {
	k := strings.ToLower(strings.TrimSpace(keyOrHost))
	for _, p := range Presets {
		if p.Key == k || p.IMAP.Host == k || p.SMTP.Host == k {
			return p, true
		}
	}
	return Preset{}, false
}

// accountPreset finds the preset of acct by its Provider, else its hosts.
func accountPreset(acct *Account) (Preset, bool) {
	for _, k := range []string{acct.Provider, acct.IMAP.Host, acct.SMTP.Host} {
		if p, ok := PresetFor(k); ok && k != "" {
			return p, true
		}
	}
	return Preset{}, false
}

// CheckEndpoint returns warnings about a port and TLS mode that do not go
// together (993 and 465 are implicit TLS, 143 and 587 STARTTLS, 25 is for
// server-to-server relay). proto is "imap" or "smtp". It does no I/O, so
// a form can show the warnings as the person types.
func CheckEndpoint(proto string, ep Endpoint) []string {
	var w []string
	want := map[int]TLSMode{993: TLSImplicit, 143: TLSStartTLS, 465: TLSImplicit, 587: TLSStartTLS}
	if m, ok := want[ep.Port]; ok && ep.TLS != m {
		w = append(w, fmt.Sprintf("port %d normally uses %q, not %q", ep.Port, m, ep.TLS))
	}
	switch {
	case proto == "imap" && (ep.Port == 465 || ep.Port == 587 || ep.Port == 25):
		w = append(w, fmt.Sprintf("port %d is an SMTP port; IMAP uses 993 (tls) or 143 (starttls)", ep.Port))
	case proto == "smtp" && (ep.Port == 993 || ep.Port == 143):
		w = append(w, fmt.Sprintf("port %d is an IMAP port; SMTP submission uses 465 (tls) or 587 (starttls)", ep.Port))
	case proto == "smtp" && ep.Port == 25:
		w = append(w, "port 25 is for server-to-server relay and often blocked; use 465 (tls) or 587 (starttls)")
	}
	if ep.TLS == TLSNone && !isLoopbackHost(ep.Host) {
		w = append(w, "TLS mode none is only allowed for a server on this machine (loopback)")
	}
	if ep.Port <= 0 || ep.Port > 65535 {
		w = append(w, "port must be between 1 and 65535")
	}
	return w
}
