package views_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"github.com/imap-mcp/imap-mcp/views"
)

func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func byTestID(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

func TestLayoutShowsModeUserAndCSRF(t *testing.T) {
	page := views.Page{Title: "Home", Nav: "/accounts", Mode: "local", User: "Local admin", CSRF: "tok-123"}
	doc := render(t, views.Home(views.HomePage{Page: page, MCPURL: "https://m.example/api/mcp"}))
	if got := byTestID(doc, "mode").Text(); got != "Local single-user mode" {
		t.Errorf("mode badge = %q", got)
	}
	if got := byTestID(doc, "user").Text(); got != "Local admin" {
		t.Errorf("user = %q", got)
	}
	if h, _ := doc.Find("body").Attr("hx-headers"); h != `{"X-Csrf-Token":"tok-123"}` {
		t.Errorf("hx-headers = %q", h)
	}
	if cur, _ := doc.Find(`nav a[aria-current="page"]`).Attr("href"); cur != "/accounts" {
		t.Errorf("current nav = %q", cur)
	}
	if doc.Find("script:not([src])").Length() != 0 {
		t.Error("inline script in the layout")
	}
	if v, _ := doc.Find(`form[action="/sign-out"] input[name="_csrf"]`).Attr("value"); v != "tok-123" {
		t.Errorf("sign-out form token = %q", v)
	}
	signedOut := render(t, views.Home(views.HomePage{Page: views.Page{Mode: "clerk"}}))
	if byTestID(signedOut, "user").Length() != 0 || signedOut.Find(`form[action="/sign-out"]`).Length() != 0 {
		t.Error("signed-out page shows a user or a sign-out form")
	}
}

func TestAccountFormErrorsAndWarnings(t *testing.T) {
	doc := render(t, views.AccountEdit(views.AccountForm{Page: views.Page{CSRF: "t"}, ID: "a1", Label: "Work", IMAPPort: 143,
		IMAPTLSMode: "tls", Errors: map[string]string{"email": "Enter an email address."},
		IMAPWarnings: []string{`port 143 normally uses "starttls", not "tls"`}, SignatureSanitized: "<b>Sig</b>"}))
	if got := byTestID(doc, "email-error").Text(); got != "Enter an email address." {
		t.Errorf("email error = %q", got)
	}
	if inv, _ := doc.Find("#email").Attr("aria-invalid"); inv != "true" {
		t.Error("email field not marked invalid")
	}
	if _, ok := doc.Find("#label").Attr("aria-invalid"); ok {
		t.Error("valid field marked invalid")
	}
	if got := byTestID(doc, "imap-warnings").Text(); !strings.Contains(got, "normally uses") {
		t.Errorf("IMAP warnings = %q", got)
	}
	if v, _ := doc.Find("#imap_password").Attr("value"); v != "" {
		t.Errorf("password field prefilled: %q", v)
	}
	if sel, _ := doc.Find(`#imap_tls_mode option[selected]`).Attr("value"); sel != "tls" {
		t.Errorf("selected TLS mode = %q", sel)
	}
	if got, _ := byTestID(doc, "signature-preview").Html(); !strings.Contains(got, "<b>Sig</b>") {
		t.Errorf("signature preview = %q", got)
	}
	if doc.Find(`[data-testid="preset"]`).Length() != 0 {
		t.Error("edit form offers presets")
	}
}

func TestTestStatusBadges(t *testing.T) {
	doc := render(t, views.TestStatus(views.TestBadges{ID: "a1", Status: "failing", IMAP: "ok", SMTP: "failing", Hint: "SMTP: wrong password"}))
	if id, _ := byTestID(doc, "test-status").Attr("id"); id != "test-a1" {
		t.Errorf("swap target id = %q", id)
	}
	if c, _ := byTestID(doc, "smtp-badge").Attr("class"); !strings.Contains(c, "bad") {
		t.Errorf("SMTP badge class = %q", c)
	}
	if c, _ := byTestID(doc, "imap-badge").Attr("class"); !strings.Contains(c, "ok") {
		t.Errorf("IMAP badge class = %q", c)
	}
	if byTestID(doc, "hint").Text() != "SMTP: wrong password" {
		t.Error("hint missing")
	}
	untested := render(t, views.TestStatus(views.TestBadges{ID: "a2", Status: "untested"}))
	if byTestID(untested, "imap-badge").Length() != 0 {
		t.Error("an untested account shows protocol badges")
	}
}

func TestConsentPage(t *testing.T) {
	doc := render(t, views.Consent(views.ConsentPage{Page: views.Page{CSRF: "c"}, ClientName: "Claude", RedirectHost: "claude.ai",
		Modify: true, Hidden: []views.Field{{Name: "client_id", Value: `x"><script>`}, {Name: "state", Value: "s"}}}))
	if byTestID(doc, "redirect-host").Text() != "claude.ai" {
		t.Error("redirect host not shown")
	}
	if byTestID(doc, "scope-modify").Length() != 1 || byTestID(doc, "scope-send").Length() != 0 {
		t.Error("scope boxes do not follow the request")
	}
	if v, _ := doc.Find(`input[name="client_id"]`).Attr("value"); v != `x"><script>` {
		t.Errorf("hidden value not preserved safely: %q", v)
	}
	if doc.Find("script:not([src])").Length() != 0 {
		t.Error("a hidden value escaped into markup")
	}
}

// TestOutboxPreviewCannotRearrangeThePage: the HTML of a waiting message,
// stray closing tags and all, stays inside its sandboxed frame; the
// recipients, attachments and buttons stay where the page puts them.
func TestOutboxPreviewCannotRearrangeThePage(t *testing.T) {
	html := `<p>See you at noon.</p></div></details></div></section><p id="outbox-x" data-testid="outbox-send">INJECTED</p><details><div>`
	doc := render(t, views.Outbox(views.OutboxPage{Items: []views.OutboxEntry{{ID: "o1", State: "pending_approval", Subject: "Lunch",
		To: []string{"ann@example.org"}, Text: "See you at noon.", HTML: html, Attachments: []views.OutboxAttachment{{Name: "passwords.csv", Type: "text/csv", Size: 9}}}}}))
	frame := byTestID(doc, "outbox-html")
	if frame.Length() != 1 || frame.AttrOr("sandbox", "x") != "" || frame.AttrOr("srcdoc", "") != html {
		t.Fatalf("the HTML is not in a sandboxed frame: %d %q", frame.Length(), frame.AttrOr("srcdoc", ""))
	}
	if strings.Contains(doc.Text(), "INJECTED") || byTestID(doc, "outbox-send").Length() != 1 {
		t.Fatal("the message's HTML reached the page")
	}
	if att := byTestID(doc, "outbox-attachments"); att.Length() != 1 || att.ParentsFiltered("details").Length() != 0 || !strings.Contains(att.Text(), "passwords.csv") {
		t.Fatal("the attachments are not listed in the open")
	}
}
