package extract

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// decodeText returns data as UTF-8: by its byte-order mark, else in the
// charset named (when known), else as UTF-8 when it is valid, else as
// Windows-1252, which every byte sequence is.
func decodeText(data []byte, cs string) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return strings.ToValidUTF8(string(data[3:]), "\uFFFD")
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		if s, err := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewDecoder().Bytes(data); err == nil {
			return string(s)
		}
	}
	if cs = strings.ToLower(strings.TrimSpace(cs)); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := charset.Reader(cs, bytes.NewReader(data)); err == nil {
			if s, err := io.ReadAll(io.LimitReader(r, 4*MaxInput)); err == nil {
				return strings.ToValidUTF8(string(s), "\uFFFD")
			}
		}
	}
	if utf8.Valid(data) {
		return string(data)
	}
	s, _ := charmap.Windows1252.NewDecoder().Bytes(data)
	return string(s)
}

// maxCSVFields bounds the fields of one CSV line (as many as a
// spreadsheet has columns).
const maxCSVFields = 16384

// readCSV writes each record as one line, fields separated by " | ".
// A file that is not CSV after all is shown as the text it is.
func readCSV(out *output, data []byte, cs string) error {
	text := decodeText(data, cs)
	for line := range strings.Lines(text) {
		if strings.Count(line, ",")+strings.Count(line, ";") > maxCSVFields {
			return refuse(CSV, "a line has more than %d fields", maxCSVFields)
		}
		out.tick()
	}
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord, r.LazyQuotes, r.ReuseRecord = -1, true, true
	if first, _, _ := strings.Cut(text, "\n"); strings.Count(first, ";") > strings.Count(first, ",") {
		r.Comma = ';' // as spreadsheets write CSV in locales with a decimal comma
	}
	var b strings.Builder
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.WriteString(text)
			return nil
		}
		b.Reset()
		for i, f := range rec {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(strings.Join(strings.Fields(f), " "))
		}
		b.WriteByte('\n')
		out.WriteString(b.String())
	}
	return nil
}

// readCalendar writes each event (and to-do) as readable lines: summary,
// start and end as written with their time zone, organizer, attendees,
// location, status, recurrence and description.
func readCalendar(out *output, data []byte, cs string) error {
	text := decodeText(data, cs)
	if nesting(unfold.Replace(text)) > maxCalendarNesting {
		// The decoder recurses once per BEGIN.
		return refuse(Calendar, "its components are nested more than %d deep", maxCalendarNesting)
	}
	cal, err := ical.NewDecoder(strings.NewReader(text)).Decode()
	if err != nil {
		return refuse(Calendar, "it is not valid iCalendar")
	}
	switch m := strings.ToUpper(propText(cal.Props, "METHOD")); m {
	case "REQUEST":
		out.WriteString("An invitation (METHOD:REQUEST).\n")
	case "CANCEL":
		out.WriteString("A cancellation (METHOD:CANCEL).\n")
	case "REPLY":
		out.WriteString("A reply to an invitation (METHOD:REPLY).\n")
	case "":
	default:
		out.WriteString("Method: " + m + "\n")
	}
	n := 0
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent && c.Name != ical.CompToDo {
			continue
		}
		if n++; n > MaxPages {
			out.WriteString(fmt.Sprintf("… more entries not shown (at most %d are read).\n", MaxPages))
			break
		}
		kind := "Event"
		if c.Name == ical.CompToDo {
			kind = "To-do"
		}
		out.WriteString(fmt.Sprintf("\n%s: %s\n", kind, orNone(propText(c.Props, ical.PropSummary))))
		line := func(label, v string) {
			if v != "" {
				out.WriteString(label + ": " + v + "\n")
			}
		}
		line("Start", when(c.Props.Get(ical.PropDateTimeStart)))
		line("End", when(c.Props.Get(ical.PropDateTimeEnd)))
		line("Due", when(c.Props.Get(ical.PropDue)))
		line("Duration", propText(c.Props, ical.PropDuration))
		line("Repeats", propText(c.Props, ical.PropRecurrenceRule))
		line("Location", propText(c.Props, ical.PropLocation))
		line("Organizer", person(c.Props.Get(ical.PropOrganizer)))
		var attendees []string
		for _, a := range c.Props.Values(ical.PropAttendee) {
			attendees = append(attendees, person(&a))
		}
		line("Attendees", strings.Join(attendees, "; "))
		line("Status", propText(c.Props, ical.PropStatus))
		line("Description", propText(c.Props, ical.PropDescription))
	}
	if n == 0 {
		out.WriteString("The calendar holds no events.\n")
	}
	return nil
}

// maxCalendarNesting bounds BEGIN inside BEGIN (a calendar, an event, an
// alarm: real files nest three or four deep).
const maxCalendarNesting = 16

// unfold joins folded iCalendar lines, as the decoder does.
var unfold = strings.NewReplacer("\r\n ", "", "\r\n\t", "", "\n ", "", "\n\t", "")

// nesting returns the deepest BEGIN/END nesting of an unfolded iCalendar
// text.
func nesting(text string) int {
	depth, deepest := 0, 0
	for line := range strings.Lines(text) {
		switch {
		case len(line) >= 6 && strings.EqualFold(line[:6], "BEGIN:"):
			depth++
			deepest = max(deepest, depth)
		case len(line) >= 4 && strings.EqualFold(line[:4], "END:"):
			depth--
		}
	}
	return deepest
}

func propText(props ical.Props, name string) string {
	p := props.Get(name)
	if p == nil {
		return ""
	}
	if v, err := props.Text(name); err == nil {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(p.Value)
}

// when shows a date or date-time as it is written, with its time zone:
// "2026-12-03 09:00 Europe/Berlin", "2026-12-03 09:00 UTC", or
// "2026-12-03 (all day)". No time zone database is needed.
func when(p *ical.Prop) string {
	if p == nil {
		return ""
	}
	v := p.Value
	switch {
	case len(v) == 8:
		return v[:4] + "-" + v[4:6] + "-" + v[6:] + " (all day)"
	case len(v) >= 15 && v[8] == 'T':
		s := v[:4] + "-" + v[4:6] + "-" + v[6:8] + " " + v[9:11] + ":" + v[11:13]
		if strings.HasSuffix(v, "Z") {
			return s + " UTC"
		}
		if tz := p.Params.Get(ical.PropTimezoneID); tz != "" {
			return s + " " + tz
		}
		return s + " (floating: the reader's own time)"
	}
	return v
}

// person shows an ORGANIZER or ATTENDEE: "Name <addr> (accepted)".
func person(p *ical.Prop) string {
	if p == nil {
		return ""
	}
	addr := p.Value
	if len(addr) > 7 && strings.EqualFold(addr[:7], "mailto:") {
		addr = addr[7:]
	}
	s := addr
	if cn := p.Params.Get(ical.ParamCommonName); cn != "" {
		s = cn + " <" + addr + ">"
	}
	if st := p.Params.Get(ical.ParamParticipationStatus); st != "" {
		s += " (" + strings.ToLower(strings.ReplaceAll(st, "-", " ")) + ")"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(no title)"
	}
	return s
}

// short bounds a library's error text in a message.
func short(s string) string {
	if len(s) > 200 {
		return s[:validPrefix(s, 200)] + "…"
	}
	return s
}
