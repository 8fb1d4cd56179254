package oauth

import (
	"net/http/httptest"
	"testing"
)

func TestClientAddrTakesTheProxysEntry(t *testing.T) {
	for xff, want := range map[string]string{
		"":                              "192.0.2.7",
		"203.0.113.9":                   "203.0.113.9",
		"6.6.6.6, 203.0.113.9":          "203.0.113.9", // the client forged the first entry
		"6.6.6.6,7.7.7.7 , 203.0.113.9": "203.0.113.9",
	} {
		r := httptest.NewRequest("POST", "/register", nil)
		r.RemoteAddr = "192.0.2.7:5555"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if got := clientAddr(r); got != want {
			t.Errorf("X-Forwarded-For %q: clientAddr = %q, want %q", xff, got, want)
		}
	}
}
