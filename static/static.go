// Package static holds the embedded front-end files: htmx (vendored, 2.0.x)
// and the stylesheet. No build step produces them.
package static

import "embed"

// FS holds the files served under /static/.
//
//go:embed *.js *.css *.svg
var FS embed.FS
