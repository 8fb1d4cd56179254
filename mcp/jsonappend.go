package mcp

import (
	"strconv"
	"unicode/utf8"
)

// The results that nearly every call returns, a page of messages and one
// message, are encoded by hand: encoding/json spent half the encoding of
// such a result in reflection and the rest escaping its strings one byte
// at a time, where appendJSONString passes eight plain bytes at a time.
// The output is encoding/json's with HTML escaping off, byte for byte
// (TestAppendJSONMatchesEncodingJSON fills every field of these types).

// jsonAppender is a result that appends its own JSON encoding to b.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, as encoding/json writes it
// with HTML escaping off: invalid UTF-8 becomes \ufffd, and U+2028 and
// U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start, i := 0, 0
	for i < len(s) {
		// Eight bytes at a time while they are ASCII that a JSON string
		// holds as they are: none below 0x20, no '"', no '\\'. Each test is
		// the "some byte is zero" (or "below n") word test, exact for words
		// without high bits; a high bit fails the word by itself.
		for ; i+8 <= len(s); i += 8 {
			const ones, highs = 0x0101010101010101, 0x8080808080808080
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			quote, backslash := x^(ones*'"'), x^(ones*'\\')
			if (x|(x-ones*0x20)&^x|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0 {
				break
			}
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONStrings appends list as encoding/json does: null when nil.
func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONList appends list as encoding/json does: null when nil.
func appendJSONList[T jsonAppender](b []byte, list []T) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = list[i].appendJSON(b)
	}
	return append(b, ']')
}

// jsonObject appends the members of one object; each method takes the
// member's key with its leading '{' or ',' and its colon.
type jsonObject struct{ b []byte }

func (o *jsonObject) str(key, v string)           { o.b = appendJSONString(append(o.b, key...), v) }
func (o *jsonObject) strs(key string, v []string) { o.b = appendJSONStrings(append(o.b, key...), v) }
func (o *jsonObject) int(key string, v int64)     { o.b = strconv.AppendInt(append(o.b, key...), v, 10) }
func (o *jsonObject) bool(key string, v bool)     { o.b = strconv.AppendBool(append(o.b, key...), v) }
func (o *jsonObject) end() []byte                 { return append(o.b, '}') }

func (m MessageSummary) appendJSON(b []byte) []byte {
	o := jsonObject{b}
	o.int(`{"uid":`, int64(m.UID))
	o.str(`,"date":`, m.Date)
	if m.DateIsReceived {
		o.bool(`,"date_is_received":`, true)
	}
	o.str(`,"from":`, m.From)
	o.strs(`,"to":`, m.To)
	if m.ToTotal != 0 {
		o.int(`,"to_total":`, int64(m.ToTotal))
	}
	o.str(`,"subject":`, m.Subject)
	o.strs(`,"flags":`, m.Flags)
	o.int(`,"size":`, m.Size)
	o.bool(`,"has_attachments":`, m.HasAttachments)
	if m.Note != "" {
		o.str(`,"note":`, m.Note)
	}
	return o.end()
}

func (p MessagePage) appendJSON(b []byte) []byte {
	o := jsonObject{b}
	o.str(`{"folder":`, p.Folder)
	o.b = appendJSONList(append(o.b, `,"messages":`...), p.Messages)
	o.int(`,"total":`, int64(p.Total))
	if p.NextCursor != "" {
		o.str(`,"next_cursor":`, p.NextCursor)
	}
	return o.end()
}

func (a AttachmentSummary) appendJSON(b []byte) []byte {
	o := jsonObject{b}
	o.str(`{"part":`, a.Part)
	o.str(`,"filename":`, a.Filename)
	o.str(`,"content_type":`, a.ContentType)
	o.int(`,"size":`, a.Size)
	if a.ContentID != "" {
		o.str(`,"content_id":`, a.ContentID)
	}
	o.bool(`,"inline":`, a.Inline)
	if a.ReadableAs != "" {
		o.str(`,"readable_as":`, a.ReadableAs)
	}
	return o.end()
}

func (m MessageDetail) appendJSON(b []byte) []byte {
	o := jsonObject{b}
	o.int(`{"uid":`, int64(m.UID))
	o.str(`,"folder":`, m.Folder)
	o.str(`,"message_id":`, m.MessageID)
	o.str(`,"date":`, m.Date)
	if m.DateIsReceived {
		o.bool(`,"date_is_received":`, true)
	}
	o.str(`,"from":`, m.From)
	o.strs(`,"to":`, m.To)
	if m.ToTotal != 0 {
		o.int(`,"to_total":`, int64(m.ToTotal))
	}
	o.strs(`,"cc":`, m.Cc)
	if m.CcTotal != 0 {
		o.int(`,"cc_total":`, int64(m.CcTotal))
	}
	o.strs(`,"reply_to":`, m.ReplyTo)
	o.str(`,"subject":`, m.Subject)
	o.strs(`,"flags":`, m.Flags)
	o.int(`,"size":`, m.Size)
	o.str(`,"body":`, m.Body)
	o.int(`,"body_offset":`, int64(m.BodyOffset))
	o.int(`,"body_length":`, int64(m.BodyLength))
	if m.NextOffset != 0 {
		o.int(`,"next_offset":`, int64(m.NextOffset))
	}
	if m.HTML != "" {
		o.str(`,"html":`, m.HTML)
	}
	o.b = appendJSONList(append(o.b, `,"attachments":`...), m.Attachments)
	o.int(`,"attachment_total":`, int64(m.AttachmentTotal))
	o.str(`,"notice":`, m.Notice)
	return o.end()
}
