package mcp_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	mcplib "github.com/mark3labs/mcp-go/mcp"
	"github.com/tiktoken-go/tokenizer"
	"github.com/xuri/excelize/v2"

	"github.com/imap-mcp/imap-mcp/internal/testfiles"
	"github.com/imap-mcp/imap-mcp/mcp"
)

type filePart struct{ name, ctype, data string }

// withFiles is a message with a text body and files attached.
func withFiles(subject string, files ...filePart) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Ann <ann@example.org>\r\nTo: carol@example.test\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n", subject, strings.ReplaceAll(subject, " ", "-"))
	for _, f := range files {
		fmt.Fprintf(&b, "--b\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", f.ctype, f.name, f.name)
		enc := base64.StdEncoding.EncodeToString([]byte(f.data))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return []byte(b.String())
}

func TestReadAttachment(t *testing.T) {
	h, rig, keys := mailHarness(t)
	tok, u := h.token(t, "attachreader", "mail.read")
	acct := addRigAccount(t, h, rig, keys, u, "carol")
	c := h.client(t, tok)

	pdf := testfiles.PDF([]string{"BT /F1 12 Tf 72 720 Td (Invoice 2026-117: total 1 200 \\200) Tj ET", "BT /F2 12 Tf 72 720 Td <000100020003> Tj ET"}, "")
	x := excelize.NewFile()
	x.SetSheetRow("Sheet1", "A1", &[]any{"Item", "Cost"})
	x.NewSheet("Second")
	x.SetCellValue("Second", "B2", "hidden gem")
	var xlsx bytes.Buffer
	x.Write(&xlsx)
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:1@x\r\nDTSTAMP:20261201T000000Z\r\nSUMMARY:Kickoff\r\n" +
		"DTSTART;TZID=America/New_York:20261210T140000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	inner := "From: bob@example.org\r\nSubject: Forwarded note\r\n\r\nThe inner text.\r\n"
	cjk := strings.Repeat("日本語のテキストと漢字、", 8000) // 96,000 characters of CJK
	raw := withFiles("Files to read", filePart{"invoice.pdf", "application/pdf", string(pdf)}, filePart{"budget.xlsx", "application/octet-stream", xlsx.String()},
		filePart{"invite.ics", "text/calendar", ics}, filePart{"note.eml", "message/rfc822", inner}, filePart{"photo.png", "image/png", "\x89PNG\r\n\x1a\nxx"},
		filePart{"long.txt", "text/plain", cjk}, filePart{"bomb.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", bomb()})
	app, err := rig.Appender("carol")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	folder := "Read-attachments"
	uid, err := app.Append(folder, raw)
	if err != nil {
		t.Fatal(err)
	}

	msg := structured[mcp.MessageDetail](t, c, "get_message", map[string]any{"account_id": acct, "folder": folder, "uid": uid})
	readable := map[string]string{}
	parts := map[string]string{}
	for _, a := range msg.Attachments {
		readable[a.Filename], parts[a.Filename] = a.ReadableAs, a.Part
	}
	if readable["invoice.pdf"] != "pdf" || readable["budget.xlsx"] != "xlsx" || readable["invite.ics"] != "calendar" || readable["note.eml"] != "message" ||
		readable["photo.png"] != "" || readable["long.txt"] != "text" {
		t.Fatalf("readable_as: %v", readable)
	}
	read := func(name string, extra map[string]any) mcp.AttachmentText {
		args := map[string]any{"account_id": acct, "folder": folder, "uid": uid, "part": parts[name]}
		for k, v := range extra {
			args[k] = v
		}
		return structured[mcp.AttachmentText](t, c, "read_attachment", args)
	}
	for name, want := range map[string][]string{
		"invoice.pdf": {"## Page 1", "Invoice 2026-117: total 1 200 €", "## Page 2", "日本語"},
		"budget.xlsx": {"## Sheet: Sheet1", "Item | Cost", "## Sheet: Second", " | hidden gem"},
		"invite.ics":  {"Event: Kickoff", "Start: 2026-12-10 14:00 America/New_York"},
		"note.eml":    {"From: bob@example.org", "Subject: Forwarded note", "The inner text."},
	} {
		got := read(name, nil)
		for _, w := range want {
			if !strings.Contains(got.Text, w) {
				t.Errorf("%s lacks %q:\n%s", name, w, got.Text)
			}
		}
		if got.NextOffset != 0 || got.Notice == "" {
			t.Errorf("%s: %+v", name, got)
		}
	}

	// Windows: the default one stays within 8,000 tokens even in a
	// script that costs many tokens per character, and the windows join
	// up to the whole text.
	enc, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	res := call(t, c, "read_attachment", map[string]any{"account_id": acct, "folder": folder, "uid": uid, "part": parts["long.txt"]})
	n, _ := enc.Count(res.Content[0].(mcplib.TextContent).Text)
	t.Logf("default window of CJK text: %d tokens", n)
	if n > 8000 {
		t.Fatalf("default window of CJK text costs %d tokens", n)
	}
	var whole strings.Builder
	for off := 0; ; {
		w := read("long.txt", map[string]any{"offset": off, "max_chars": 30000})
		whole.WriteString(w.Text)
		if w.Length != 96000 {
			t.Fatalf("length %d", w.Length)
		}
		if off = w.NextOffset; off == 0 {
			break
		}
	}
	if whole.String() != cjk {
		t.Fatalf("the windows join to %d characters, not the text", len([]rune(whole.String())))
	}

	// Refusals name the type and what to do.
	if msg := toolError(t, c, "read_attachment", map[string]any{"account_id": acct, "folder": folder, "uid": uid, "part": parts["photo.png"]}); !strings.Contains(msg, "its type is not one read_attachment reads") || !strings.Contains(msg, "get_attachment") || strings.Contains(msg, "image/png") {
		t.Fatalf("an image: %s", msg)
	}
	if msg := toolError(t, c, "read_attachment", map[string]any{"account_id": acct, "folder": folder, "uid": uid, "part": parts["bomb.docx"]}); !strings.Contains(msg, "decompresses to more than") {
		t.Fatalf("a zip bomb: %s", msg)
	}
	if msg := toolError(t, c, "read_attachment", map[string]any{"account_id": acct, "folder": folder, "uid": uid, "part": "9"}); !strings.Contains(msg, "not found") {
		t.Fatalf("a missing part: %s", msg)
	}

	// A 50 MB file is refused at the input limit, and the connection
	// stays usable for the next call.
	huge := withFiles("Huge file", filePart{"huge.pdf", "application/pdf", "%PDF-1.4\n" + strings.Repeat("0", 50<<20)})
	hugeUID, err := app.Append(folder, huge)
	if err != nil {
		t.Fatal(err)
	}
	if msg := toolError(t, c, "read_attachment", map[string]any{"account_id": acct, "folder": folder, "uid": hugeUID, "part": "2"}); !strings.Contains(msg, "larger than 25 MB") {
		t.Fatalf("a 50 MB file: %s", msg)
	}
	if got := read("invite.ics", nil); !strings.Contains(got.Text, "Kickoff") {
		t.Fatal("the next read failed")
	}
}

// bomb is a DOCX whose document part expands to 100 MB of spaces.
func bomb() string {
	var b bytes.Buffer
	b.WriteString(`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>`)
	b.Write(bytes.Repeat([]byte(" "), 100<<20))
	b.WriteString(`</w:body></w:document>`)
	return string(testfiles.Zip(map[string]string{"word/document.xml": b.String()}))
}
