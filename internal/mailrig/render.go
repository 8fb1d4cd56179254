package mailrig

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// zones vary the Date header's offset; the instant is the same.
var zones = []*time.Location{
	time.UTC,
	time.FixedZone("CET", 3600),
	time.FixedZone("EST", -5*3600),
	time.FixedZone("JST", 9*3600),
	time.FixedZone("IST", 5*3600+1800),
}

// renderer writes one message from its plan with a private random stream.
type renderer struct {
	m   *plannedMessage
	rng *rand.Rand
}

// render returns the message with LF line ends, as stored in Maildir.
func render(m *plannedMessage) []byte {
	rd := renderer{m: m, rng: rand.New(rand.NewPCG(m.seed, 0x6d61696c726967))}
	var b bytes.Buffer
	b.Grow(4096)
	rd.writeHeader(&b)
	rd.body().write(&b)
	return b.Bytes()
}

func (rd renderer) writeHeader(b *bytes.Buffer) {
	m, style := rd.m, "bql"[rd.rng.IntN(3)]
	fmt.Fprintf(b, "Return-Path: <%s>\n", m.from.Addr)
	fmt.Fprintf(b, "Received: from mail.%s by mail.%s with ESMTPSA id %x;\n %s\n",
		Domain, Domain, m.seed>>32, m.Date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Date: %s\n", m.Date.In(zones[rd.rng.IntN(len(zones))]).Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: %s\n", address(m.from, style))
	fmt.Fprintf(b, "To: %s\n", address(m.to, style))
	for _, cc := range m.cc {
		fmt.Fprintf(b, "Cc: %s\n", address(cc, style))
	}
	fmt.Fprintf(b, "Subject: %s\n", headerWord(m.Subject, style))
	fmt.Fprintf(b, "Message-ID: <%s>\n", m.MessageID)
	if m.inReplyTo != "" {
		fmt.Fprintf(b, "In-Reply-To: <%s>\n", m.inReplyTo)
		fmt.Fprintf(b, "References: %s\n", foldList(bracket(m.references)))
	}
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString([]string{"X-Mailer: mailrig seeder\n", "User-Agent: Mozilla Thunderbird\n"}[rd.rng.IntN(2)])
}

func bracket(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "<" + id + ">"
	}
	return out
}

// boundary returns a boundary unique within the message.
func (rd renderer) boundary(level int) string {
	return fmt.Sprintf("=_mailrig_%d_%016x", level, rd.m.seed)
}

func (rd renderer) body() part {
	switch rd.m.Kind {
	case KindAlternative:
		return rd.alternative(1)
	case KindMixed:
		return rd.mixed()
	case KindNewsletter:
		return rd.newsletter()
	default:
		return rd.textPart()
	}
}

// textPart is the plain text body in a randomly chosen charset and
// transfer encoding; it records the charset in the plan.
func (rd renderer) textPart() part {
	text := rd.prose()
	if rd.rng.IntN(10) < 4 {
		s := charsetSamples[rd.rng.IntN(len(charsetSamples))]
		rd.m.Charset = s.Charset
		raw := text + "\n\n" + s.Raw + "\n\n-- \n" + rd.m.from.Addr + "\n"
		cte := cte7bit
		if s.Charset != "ISO-2022-JP" {
			cte = []string{cteQP, cteBase64, cte8bit}[rd.rng.IntN(3)]
		}
		return leaf(fmt.Sprintf("text/plain; charset=%q", s.Charset), cte, []byte(raw))
	}
	rd.m.Charset = "UTF-8"
	extra := utf8Extras[rd.rng.IntN(len(utf8Extras))]
	raw := text + "\n\n" + extra + "\n\n-- \n" + rd.m.from.Addr + "\n"
	cte := []string{cteQP, cteBase64, cte8bit}[rd.rng.IntN(3)]
	return leaf(`text/plain; charset="UTF-8"`, cte, []byte(raw))
}

// prose is a greeting, a few paragraphs and, for replies, a quote of the
// parent's opening paragraph.
func (rd renderer) prose() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Hi %s,\n\n", firstName(rd.m.to))
	for range 1 + rd.rng.IntN(4) {
		b.WriteString(paragraph(rd.rng))
		b.WriteString("\n\n")
	}
	if rd.m.inReplyTo != "" {
		parent := rand.New(rand.NewPCG(rd.m.parentSeed, 1))
		fmt.Fprintf(&b, "On an earlier day, someone wrote:\n> %s\n", strings.ReplaceAll(paragraph(parent), "\n", "\n> "))
	}
	return strings.TrimRight(b.String(), "\n")
}

func firstName(p person) string {
	if p.Name == "" {
		return "there"
	}
	return strings.Fields(p.Name)[0]
}

// paragraph returns 2–6 sentences of filler, wrapped at about 72 columns.
func paragraph(rng *rand.Rand) string {
	var b strings.Builder
	col := 0
	for range 2 + rng.IntN(5) {
		n := 6 + rng.IntN(12)
		for i := range n {
			w := words[rng.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			if i == n-1 {
				w += "."
			}
			if col+len(w) > 72 {
				b.WriteByte('\n')
				col = 0
			} else if col > 0 {
				b.WriteByte(' ')
				col++
			}
			b.WriteString(w)
			col += len(w)
		}
	}
	return b.String()
}

// alternative is text plus an HTML rendering of the same prose.
func (rd renderer) alternative(level int) part {
	text := rd.textPart()
	var h strings.Builder
	h.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family: sans-serif\">\n")
	for _, para := range strings.Split(rd.prose(), "\n\n") {
		fmt.Fprintf(&h, "<p>%s</p>\n", strings.ReplaceAll(html.EscapeString(para), "\n", "<br>\n"))
	}
	h.WriteString("<p><b>Best regards</b>,<br><i>" + html.EscapeString(rd.m.from.Name) + "</i> &#x2709;</p>\n</body></html>\n")
	htmlPart := leaf(`text/html; charset="UTF-8"`, []string{cteQP, cteBase64}[rd.rng.IntN(2)], []byte(h.String()))
	return multipart("alternative", rd.boundary(level), text, htmlPart)
}

// mixed is a body followed by one to four attachments of distinct types.
func (rd renderer) mixed() part {
	body := rd.textPart()
	if rd.rng.IntN(2) == 0 {
		body = rd.alternative(2)
	}
	parts := []part{body}
	makers := []func() part{rd.pdf, rd.png, rd.textFile, rd.forwarded}
	for _, i := range rd.rng.Perm(len(makers))[:1+rd.rng.IntN(len(makers))] {
		parts = append(parts, makers[i]())
	}
	return multipart("mixed", rd.boundary(1), parts...)
}

func disposition(kind, name string) string {
	return "Content-Disposition: " + kind + ";\n " + fileParam("filename", name)
}

// pdf is a binary attachment that starts and ends like a PDF.
func (rd renderer) pdf() part {
	data := make([]byte, 8*(256+rd.rng.IntN(4*1024)))
	for i := 0; i < len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rd.rng.Uint64())
	}
	raw := append([]byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\nstream\n"), data...)
	raw = append(raw, "\nendstream\n%%EOF\n"...)
	name := []string{"report-Q3.pdf", "Rechnung März.pdf", "contract_signed.pdf"}[rd.rng.IntN(3)]
	return leaf("application/pdf;\n "+fileParam("name", name), cteBase64, raw, disposition("attachment", name))
}

var (
	pngOnce  sync.Once
	pngImage []byte
)

// pngData returns a small valid PNG, encoded once.
func pngData() []byte {
	pngOnce.Do(func() {
		img := image.NewRGBA(image.Rect(0, 0, 24, 24))
		for y := range 24 {
			for x := range 24 {
				img.Set(x, y, color.RGBA{uint8(x * 10), uint8(y * 10), 160, 255})
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			panic(fmt.Sprintf("mailrig: encode PNG: %v", err))
		}
		pngImage = b.Bytes()
	})
	return pngImage
}

func (rd renderer) png() part {
	disp := []string{"attachment", "inline"}[rd.rng.IntN(2)]
	return leaf(`image/png; name="chart.png"`, cteBase64, pngData(),
		disposition(disp, "chart.png"), fmt.Sprintf("Content-ID: <chart.%x@%s>", rd.m.seed, Domain))
}

func (rd renderer) textFile() part {
	name := []string{"notes.txt", "Résumé 2024.txt", "checklist.txt"}[rd.rng.IntN(3)]
	content := "To do:\n- " + strings.ReplaceAll(paragraph(rd.rng), "\n", "\n- ") + "\n- café ☕\n"
	return leaf(`text/plain; charset="UTF-8";`+"\n "+fileParam("name", name),
		[]string{cteQP, cteBase64}[rd.rng.IntN(2)], []byte(content), disposition("attachment", name))
}

// forwarded is a message/rfc822 attachment holding a short older message.
func (rd renderer) forwarded() part {
	from := outsiders[rd.rng.IntN(len(outsiders))]
	var b bytes.Buffer
	fmt.Fprintf(&b, "Date: %s\n", rd.m.Date.Add(-72*time.Hour).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: %s\n", address(from, 'q'))
	fmt.Fprintf(&b, "To: %s\n", address(rd.m.from, 'q'))
	fmt.Fprintf(&b, "Subject: %s\n", headerWord("Fwd: Original – Übersicht", 'q'))
	fmt.Fprintf(&b, "Message-ID: <fwd.%x@example.org>\n", rd.m.seed)
	b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=\"UTF-8\"\nContent-Transfer-Encoding: 8bit\n\n")
	b.WriteString(paragraph(rd.rng) + "\n\nGrüße, " + firstName(from) + "\n")
	return leaf("message/rfc822", cte8bit, b.Bytes(), disposition("attachment", "forwarded.eml"))
}

// newsletter is a large HTML mail (well over 100 KB) with a short text
// alternative.
func (rd renderer) newsletter() part {
	rd.m.Charset = "UTF-8"
	var h strings.Builder
	h.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Example Weekly</title>\n<style>td{padding:8px;font-family:Georgia,serif}h2{color:#336}</style></head>\n<body style=\"margin:0;background:#f4f4f4\"><table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">")
	for i := 0; h.Len() < 110*1024; i++ {
		fmt.Fprintf(&h, "<tr><td style=\"background:#fff;border-bottom:1px solid #ddd\"><h2>Story %d: %s</h2>", i+1, html.EscapeString(subjects[rd.rng.IntN(len(subjects))]))
		fmt.Fprintf(&h, "<img src=\"https://example.com/img/%d.jpg\" alt=\"\" width=\"560\" height=\"200\" style=\"display:block\">", i)
		for range 3 {
			fmt.Fprintf(&h, "<p style=\"font-size:15px;line-height:1.5;color:#333\">%s</p>", html.EscapeString(strings.ReplaceAll(paragraph(rd.rng), "\n", " ")))
		}
		fmt.Fprintf(&h, "<p><a href=\"https://example.com/story/%d?utm_source=newsletter&amp;utm_medium=email\">Read more &rarr;</a></p></td></tr>\n", i)
	}
	h.WriteString("</table><p style=\"font-size:11px\">You receive this because you subscribed. <a href=\"https://example.com/unsubscribe\">Unsubscribe</a></p></body></html>\n")
	text := leaf(`text/plain; charset="UTF-8"`, cteQP, []byte("Example Weekly\n\nThis issue is best read as HTML: https://example.com/weekly\n"))
	return multipart("alternative", rd.boundary(1), text, leaf(`text/html; charset="UTF-8"`, cteQP, []byte(h.String())))
}
