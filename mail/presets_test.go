package mail

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckEndpoint(t *testing.T) {
	for _, tc := range []struct {
		proto string
		ep    Endpoint
		want  []string // substrings, one per warning
	}{
		{"imap", Endpoint{"imap.example.com", 993, TLSImplicit}, nil},
		{"imap", Endpoint{"imap.example.com", 143, TLSStartTLS}, nil},
		{"smtp", Endpoint{"smtp.example.com", 465, TLSImplicit}, nil},
		{"smtp", Endpoint{"smtp.example.com", 587, TLSStartTLS}, nil},
		{"imap", Endpoint{"imap.example.com", 993, TLSStartTLS}, []string{`port 993 normally uses "tls"`}},
		{"smtp", Endpoint{"smtp.example.com", 587, TLSImplicit}, []string{`port 587 normally uses "starttls"`}},
		{"smtp", Endpoint{"smtp.example.com", 25, TLSStartTLS}, []string{"port 25 is for server-to-server"}},
		{"imap", Endpoint{"imap.example.com", 587, TLSStartTLS}, []string{"587 is an SMTP port"}},
		{"smtp", Endpoint{"smtp.example.com", 993, TLSImplicit}, []string{"993 is an IMAP port"}},
		{"imap", Endpoint{"imap.example.com", 1143, TLSNone}, []string{"only allowed for a server on this machine"}},
		{"imap", Endpoint{"127.0.0.1", 1143, TLSNone}, nil},
		{"imap", Endpoint{"imap.example.com", 0, TLSImplicit}, []string{"between 1 and 65535"}},
	} {
		got := CheckEndpoint(tc.proto, tc.ep)
		if len(got) != len(tc.want) {
			t.Errorf("%s %+v: %q", tc.proto, tc.ep, got)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s %+v: %q, want %q", tc.proto, tc.ep, got[i], w)
			}
		}
	}
}

func TestPresetsAreConsistent(t *testing.T) {
	keys := map[string]bool{}
	for _, p := range Presets {
		if keys[p.Key] || p.Name == "" {
			t.Errorf("preset %q duplicate or unnamed", p.Key)
		}
		keys[p.Key] = true
		if w := append(CheckEndpoint("imap", p.IMAP), CheckEndpoint("smtp", p.SMTP)...); len(w) > 0 && p.Key != "proton" {
			t.Errorf("preset %s: %v", p.Key, w)
		}
	}
	for _, k := range []string{"gmail", "outlook", "icloud", "yahoo", "fastmail", "ovh", "gmx", "zoho", "proton"} {
		if !keys[k] {
			t.Errorf("preset %s missing", k)
		}
	}
	if p, ok := PresetFor("imap.gmail.com"); !ok || p.Key != "gmail" || !p.KeepsSentCopy {
		t.Errorf("by host: %+v", p)
	}
}

func TestHints(t *testing.T) {
	auth := &Error{Kind: KindAuth, Op: "imap login", Err: errors.New("NO")}
	for _, tc := range []struct {
		err  error
		acct *Account
		want string
	}{
		{auth, &Account{Provider: "icloud"}, "app password"},
		{auth, &Account{IMAP: Endpoint{Host: "imap.mail.yahoo.com"}}, "Yahoo"},
		{auth, &Account{IMAP: Endpoint{Host: "mail.example.org"}}, "user name or password"},
		{&Error{Kind: KindTLSMismatch}, nil, "993"},
		{&Error{Kind: KindCertificate}, nil, "MAIL_CA_FILE"},
		{&Error{Kind: KindForbidden}, nil, "MAIL_ALLOW_PRIVATE_HOSTS=true"},
		{&Error{Kind: KindUnsupported, Err: ErrNoTrash}, nil, "no Trash"},
		{&Error{Kind: KindTimeout}, nil, "in time"},
		{&Error{Kind: KindTimeout, Op: "imap greeting"}, nil, "other TLS mode"},
		{&Error{Kind: KindTimeout, Op: "imap login"}, nil, "sign-in in time"},
		{&Error{Kind: KindDNS}, nil, "resolve"},
		{&Error{Kind: KindRefused}, nil, "accepts connections"},
	} {
		if got := Hint(tc.err, tc.acct); !strings.Contains(got, tc.want) {
			t.Errorf("Hint(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if Hint(errors.New("plain"), nil) != "" {
		t.Error("hint for a foreign error")
	}
}

func TestAccountNeverShowsPassword(t *testing.T) {
	a := Account{ID: "x", Username: "u", Password: "s3cret-pass"}
	for _, s := range []string{a.String(), a.LogValue().String()} {
		if strings.Contains(s, "s3cret") {
			t.Fatalf("password shown: %s", s)
		}
	}
	b := a
	b.Password = "other"
	if a.fingerprint() == b.fingerprint() || strings.Contains(a.fingerprint(), "s3cret") {
		t.Fatal("fingerprint ignores the password or shows it")
	}
}
