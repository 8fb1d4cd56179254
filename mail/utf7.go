package mail

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// utf7Base64 maps a byte to its value in the base64 alphabet of RFC 2152,
// or -1 when the byte is not a base64 character.
var utf7Base64 = func() (t [256]int8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = -1
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// decodeUTF7 decodes RFC 2152 UTF-7 (not the modified UTF-7 of IMAP
// mailbox names) to UTF-8. A '+' starts a run of base64 holding UTF-16BE
// code units that ends at the first non-base64 byte, a '-' ending a run
// being absorbed; "+-" is '+'. Everything outside runs is copied. The
// result is always valid UTF-8, and U+FFFD stands only for what cannot be
// decoded: a lone surrogate or a run ending inside a code unit. Bytes
// UTF-7 does not allow are taken leniently, such text being mislabelled
// rather than corrupt: a '+' followed by neither base64 nor '-' stays a
// '+', and an 8-bit byte is read as UTF-8 where valid, else as
// Windows-1252.
func decodeUTF7(b []byte) string {
	var s strings.Builder
	s.Grow(len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '+':
			i++
			switch {
			case i < len(b) && b[i] == '-':
				s.WriteByte('+')
				i++
			case i < len(b) && utf7Base64[b[i]] >= 0:
				i = utf7Run(&s, b, i)
				if i < len(b) && b[i] == '-' {
					i++
				}
			default:
				s.WriteByte('+')
			}
		case c < utf8.RuneSelf:
			s.WriteByte(c)
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				r = charmap.Windows1252.DecodeByte(c)
			}
			s.WriteRune(r)
			i += n
		}
	}
	return s.String()
}

// utf7Run decodes the base64 run starting at b[i] into s and returns the
// index of the byte that ends it.
func utf7Run(s *strings.Builder, b []byte, i int) int {
	var (
		acc  uint32 // pending bits, the newest in the low end
		bits uint   // number of pending bits
		high rune   // pending high surrogate, or 0
	)
	for ; i < len(b); i++ {
		v := utf7Base64[b[i]]
		if v < 0 {
			break
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits < 16 {
			continue
		}
		bits -= 16
		u := rune(acc >> bits & 0xFFFF)
		acc &= 1<<bits - 1
		switch {
		case high != 0 && u >= 0xDC00 && u < 0xE000:
			s.WriteRune(utf16.DecodeRune(high, u))
			high = 0
			continue
		case high != 0:
			s.WriteRune(utf8.RuneError) // high surrogate without its low half
			high = 0
		}
		switch {
		case u >= 0xD800 && u < 0xDC00:
			high = u
		case u >= 0xDC00 && u < 0xE000:
			s.WriteRune(utf8.RuneError) // low surrogate without its high half
		default:
			s.WriteRune(u)
		}
	}
	if high != 0 {
		s.WriteRune(utf8.RuneError)
	}
	// Up to 4 leftover bits are padding (their value is not checked);
	// 6 or more are a code unit cut short.
	if bits >= 6 {
		s.WriteRune(utf8.RuneError)
	}
	return i
}
