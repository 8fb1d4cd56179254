package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/imap-mcp/imap-mcp/netguard"
)

func TestAllowed(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2a00:1450:4007:80e::200e": true, "142.250.74.46": true,
		"127.0.0.1": false, "127.8.9.10": false, "::127.0.0.4": false, "::8.8.8.8": false, "::1": false, "10.0.0.1": false, "172.16.5.4": false,
		"192.168.1.1": false, "169.254.169.254": false, "fe80::1": false, "fc00::1": false, "fd12::1": false,
		"0.0.0.0": false, "::": false, "100.64.0.1": false, "224.0.0.1": false, "255.255.255.255": false,
		"::ffff:127.0.0.1": false, "::ffff:10.1.2.3": false, "198.18.0.1": false,
		"64:ff9b::a9fe:a9fe": false, "64:ff9b::7f00:1": false, "2002:7f00:1::1": false,
	} {
		if got := netguard.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestDialerRefusesTheResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	// "localhost" resolves to loopback: refused although the name looks harmless.
	for _, host := range []string{"127.0.0.1", "localhost"} {
		_, err := netguard.Dialer(time.Second, false).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if !errors.Is(err, netguard.ErrForbiddenAddress) {
			t.Fatalf("dial %s: err = %v, want ErrForbiddenAddress", host, err)
		}
	}
	c, err := netguard.Dialer(time.Second, true).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with private hosts allowed: %v", err)
	}
	c.Close()
}
