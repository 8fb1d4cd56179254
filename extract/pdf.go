package extract

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ledongthuc/pdf"
)

// readPDF writes the text of every page, at most MaxPages, each page
// under a heading. It runs in the child (see child.go): the parser
// recurses into nested objects and is not trusted with this process.
func readPDF(out *output, data []byte) error {
	text, reason := pdfText(data)
	if reason != "" {
		return refuse(PDF, "%s", reason)
	}
	out.WriteString(text)
	return nil
}

// pdfText extracts the text of the pages; a reason is given when nothing
// can be read.
func pdfText(data []byte) (text, reason string) {
	defer func() {
		if r := recover(); r != nil {
			text, reason = "", "its structure is broken"
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if strings.Contains(err.Error(), "encrypt") || strings.Contains(err.Error(), "password") {
			return "", "it is encrypted (password-protected)"
		}
		return "", "it is not a valid PDF"
	}
	n := r.NumPage()
	if n == 0 {
		return "", "it has no pages"
	}
	var b strings.Builder
	empty := 0
	for i := 1; i <= min(n, MaxPages); i++ {
		p := r.Page(i)
		fmt.Fprintf(&b, "\n## Page %d\n", i)
		t, err := p.GetPlainText(nil)
		if err != nil {
			b.WriteString("(this page could not be read)\n")
			continue
		}
		t = strings.TrimSpace(t)
		if t == "" {
			empty++
		}
		b.WriteString(t + "\n")
		if b.Len() > MaxOutput {
			break
		}
	}
	if n > MaxPages {
		fmt.Fprintf(&b, "… %d more pages not read (at most %d are).\n", n-MaxPages, MaxPages)
	}
	if empty == min(n, MaxPages) {
		return "", "it has no text layer (a scan or images only); it would need OCR"
	}
	return b.String(), ""
}
