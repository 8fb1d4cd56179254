// Package server is the one net/http server in front of everything: it
// routes /api/mcp, OAuth, static files and health probes itself and hands
// the web UI to Fiber, whose adaptor cannot stream (see DESIGN.md §4).
package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/imap-mcp/imap-mcp/static"
)

// Timeouts and limits of the HTTP server.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	WriteTimeout      = 5 * time.Minute // long enough for an attachment download
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
	// MaxBodyBytes bounds request bodies unless a route sets its own limit.
	MaxBodyBytes = 1 << 20
	readyTimeout = 2 * time.Second
)

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options are the parts the server routes to.
type Options struct {
	Addr string
	// Web serves every path no other route claims (the Fiber app).
	Web http.Handler
	// WebObserved reports that Web records its own metrics by route.
	WebObserved       bool
	DB                Pinger
	Metrics           *Metrics
	Logger            *slog.Logger
	HTTPS             bool // APP_URL is https: send HSTS
	TrustProxyHeaders bool
	// CSP is the Content-Security-Policy of every response
	// (see ContentSecurityPolicy).
	CSP string
}

// Server is the HTTP front of the process.
type Server struct {
	mux *http.ServeMux
	o   Options
}

// New builds the server with its probes, metrics and static routes. More
// routes are added with Handle before Serve.
func New(o Options) *Server {
	s := &Server{mux: http.NewServeMux(), o: o}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", o.Metrics.Handler())
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static.FS))))
	s.mux.Handle("/", limitBody(o.Web, MaxBodyBytes))
	return s
}

// Handle registers h for a ServeMux pattern, inside the common middleware.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the whole middleware chain around the routes.
func (s *Server) Handler() http.Handler {
	return recoverPanics(s.o.Logger, securityHeaders(s.o.CSP, s.o.HTTPS, proxyHeaders(s.o.TrustProxyHeaders, s.observe(s.mux))))
}

// HTTPServer is an *http.Server with our timeouts and limits.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              s.o.Addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelWarn),
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.o.DB.Ping(ctx); err != nil {
		s.o.Logger.Warn("readiness check failed", "err", err)
		text(w, http.StatusServiceUnavailable, "database unreachable")
		return
	}
	text(w, http.StatusOK, "ok")
}

// observe records metrics for the mux's routes by pattern; the web app
// records its own when WebObserved is set.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern // set by ServeMux on this request
		if route == "/" && s.o.WebObserved {
			return
		}
		if route == "" {
			route = "unmatched"
		}
		s.o.Metrics.Observe(route, r.Method, sw.code, time.Since(start))
	})
}

// statusWriter remembers the status code; it passes Flush through so
// streaming handlers keep streaming.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ContentSecurityPolicy allows our own scripts and styles only: no inline
// script, no framing. In Clerk mode (clerkFrontendAPI set) it also admits
// ClerkJS from the instance's Frontend API host, its bot check, its images
// and the inline styles its components inject.
func ContentSecurityPolicy(clerkFrontendAPI string) string {
	if clerkFrontendAPI == "" {
		return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
			"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
	}
	fapi := "https://" + clerkFrontendAPI
	return "default-src 'self'; script-src 'self' " + fapi + " https://challenges.cloudflare.com; " +
		"style-src 'self' 'unsafe-inline'; img-src 'self' data: https://img.clerk.com; font-src 'self'; " +
		"connect-src 'self' " + fapi + "; frame-src https://challenges.cloudflare.com; worker-src 'self' blob:; " +
		"object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
}

// signaturePolicy is csp for the account pages, the only ones that show
// a signature: images from any https host and style attributes (never
// style elements, never inline script) apply, so that the preview shows a
// hosted logo and the colours and sizes, sanitized, as recipients will.
// Other pages keep csp, where no https image could carry anything away.
func signaturePolicy(csp string) string {
	out := []string{}
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		if strings.HasPrefix(d, "img-src ") {
			d = "img-src 'self' data: https:"
		}
		out = append(out, d)
	}
	if !strings.Contains(csp, "'unsafe-inline'") {
		out = append(out, "style-src-attr 'unsafe-inline'")
	}
	return strings.Join(out, "; ")
}

// accountPage reports whether path is one of the pages signaturePolicy is for.
func accountPage(path string) bool {
	return path == "/accounts" || strings.HasPrefix(path, "/accounts/")
}

func securityHeaders(csp string, https bool, next http.Handler) http.Handler {
	if csp == "" {
		csp = ContentSecurityPolicy("")
	}
	accounts := signaturePolicy(csp)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if accountPage(r.URL.Path) {
			h.Set("Content-Security-Policy", accounts)
		} else {
			h.Set("Content-Security-Policy", csp)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// same-origin, not no-referrer: under no-referrer a browser sends
		// "Origin: null" with the site's own form posts, and on plain http
		// at a name that is not localhost (a LAN host) it sends no
		// Sec-Fetch-Site either, so nothing would show where a post came
		// from. Other sites still get neither Referer nor Origin.
		h.Set("Referrer-Policy", "same-origin")
		if https {
			h.Set("Cross-Origin-Opener-Policy", "same-origin") // ignored (with a console error) on plain http
		}
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if https {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// proxyHeaders drops client-sent X-Forwarded-* unless a trusted proxy sets
// them, and tells the web app when the connection itself is TLS.
func proxyHeaders(trust bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !trust {
			for k := range r.Header {
				if strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" {
					r.Header.Del(k)
				}
			}
		}
		if r.TLS != nil {
			r.Header.Set("X-Forwarded-Proto", "https")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody reads at most limit bytes of body before calling next (the
// Fiber adaptor buffers bodies anyway) and answers 413 beyond it.
func limitBody(next http.Handler, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			text(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			text(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		if err != nil {
			text(w, http.StatusBadRequest, "could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				text(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}
