// Package gmailtest runs an in-process IMAP server that answers like
// Gmail for the commands the mail engine sends: Gmail's capabilities
// (X-GM-EXT-1), its [Gmail]/ folders with special-use attributes, labels
// as folders, X-GM-THRID and X-GM-RAW, and Gmail's delete semantics
// (expunging from a label only removes the label; moving to Trash removes
// every label). It serves implicit TLS with its own certificate.
//
// It also injects faults (a dropped connection mid-FETCH, slow answers,
// a malformed BODYSTRUCTURE) so clients can be tested against servers
// that misbehave. It implements only what the engine uses; anything else
// gets BAD.
package gmailtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Folder names as Gmail shows them (English locale).
const (
	Inbox   = "INBOX"
	AllMail = "[Gmail]/All Mail"
	Sent    = "[Gmail]/Sent Mail"
	Drafts  = "[Gmail]/Drafts"
	Spam    = "[Gmail]/Spam"
	Trash   = "[Gmail]/Trash"
	Starred = "[Gmail]/Starred"
)

// Capabilities are what Gmail announces after login (a subset of its
// real list: the extensions this fake implements).
const Capabilities = "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS ENABLE MOVE SPECIAL-USE APPENDLIMIT=35651584"

// folderAttrs lists Gmail's folders in LIST order with their attributes.
var folderAttrs = []struct{ name, attrs string }{
	{Inbox, `\HasNoChildren`},
	{"[Gmail]", `\HasChildren \Noselect`},
	{AllMail, `\All \HasNoChildren`},
	{Drafts, `\Drafts \HasNoChildren`},
	{"[Gmail]/Important", `\HasNoChildren \Important`},
	{Sent, `\HasNoChildren \Sent`},
	{Spam, `\HasNoChildren \Junk`},
	{Starred, `\Flagged \HasNoChildren`},
	{Trash, `\HasNoChildren \Trash`},
}

// Message is one stored message. Labels are folder names; every message
// outside Trash and Spam is also in All Mail.
type Message struct {
	ThrID      uint64
	MessageID  string // without angle brackets
	InReplyTo  string
	References []string
	From, To   string // plain addresses
	Subject    string
	Body       string
	Date       time.Time
	Labels     []string
	Flags      []string
	// Raw, when set, is the message as it was appended; the fields above
	// are read from it.
	Raw string
}

// Fault makes the server misbehave on FETCH (or, for FaultBadCharset,
// on SEARCH).
type Fault int

// Faults.
const (
	FaultNone             Fault = iota
	FaultDropMidFetch           // send half a FETCH response, then close
	FaultSlow                   // wait Server.Delay before answering
	FaultBadBodyStructure       // send a BODYSTRUCTURE that does not parse
	FaultBadCharset             // refuse SEARCH CHARSET like old servers: NO [BADCHARSET]
)

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	User, Password string
	Delay          time.Duration // for FaultSlow
	ln             net.Listener
	roots          *x509.CertPool
	mu             sync.Mutex
	msgs           []*stored
	uidNext        map[string]uint32
	fault          Fault
	wg             sync.WaitGroup
	open           map[net.Conn]bool // sessions, for DropAll
}

type stored struct {
	Message
	uids map[string]uint32 // folder -> UID
}

// Start listens on a loopback port with a fresh self-signed certificate.
func Start(user, password string) (*Server, error) {
	cert, roots, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("gmailtest: listen: %w", err)
	}
	s := &Server{User: user, Password: password, ln: ln, roots: roots, uidNext: map[string]uint32{}, open: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// RootCAs trusts the server's certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// SetFault changes how later UID FETCH commands behave.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Close stops listening and waits for the accept loop.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// Add stores m; labels other than Trash and Spam imply All Mail.
func (s *Server) Add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &stored{Message: m, uids: map[string]uint32{}}
	labels := slices.Clone(m.Labels)
	if !slices.Contains(labels, Trash) && !slices.Contains(labels, Spam) && !slices.Contains(labels, AllMail) {
		labels = append(labels, AllMail)
	}
	for _, l := range labels {
		s.label(st, l)
	}
	s.msgs = append(s.msgs, st)
}

// Labels returns the folders holding the message with messageID.
func (s *Server) Labels(messageID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.MessageID == messageID {
			var out []string
			for f := range m.uids {
				out = append(out, f)
			}
			slices.Sort(out)
			return out
		}
	}
	return nil
}

// label adds m to folder with the next UID. Callers hold s.mu.
func (s *Server) label(m *stored, folder string) {
	if _, ok := m.uids[folder]; ok {
		return
	}
	s.uidNext[folder]++
	m.uids[folder] = s.uidNext[folder]
}

// folderMsgs returns folder's messages in UID order. Callers hold s.mu.
func (s *Server) folderMsgs(folder string) []*stored {
	var out []*stored
	for _, m := range s.msgs {
		if _, ok := m.uids[folder]; ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *stored) int { return int(a.uids[folder]) - int(b.uids[folder]) })
	return out
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(conn)
	}
}

// DropAll closes every open session without a word, as a server that
// restarts does.
func (s *Server) DropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.open {
		_ = c.Close()
	}
}

// session answers one client until LOGOUT or EOF.
func (s *Server) session(conn net.Conn) {
	s.mu.Lock()
	s.open[conn] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.open, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	sess := &session{s: s, w: bufio.NewWriter(conn), r: bufio.NewReader(conn), conn: conn}
	sess.send("* OK Gimap ready for requests from 127.0.0.1 fake1234")
	for {
		line, err := sess.readCommand()
		if err != nil {
			return
		}
		if !sess.handle(line) {
			return
		}
	}
}

func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "imap.gmail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{netip.MustParseAddr("127.0.0.1").AsSlice()}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// quote renders an IMAP quoted string or NIL.
func quote(s string) string {
	if s == "" {
		return "NIL"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
