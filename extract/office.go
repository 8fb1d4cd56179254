package extract

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
)

// pkg is an opened zip package (OOXML or OpenDocument) whose parts share
// one decompression budget.
type pkg struct {
	out   *output
	kind  Kind
	zr    *zip.Reader
	left  int64 // bytes that may still be decompressed
	files map[string]*zip.File
}

func openPackage(out *output, k Kind, data []byte) (*pkg, error) {
	if bytes.HasPrefix(data, []byte{0xD0, 0xCF, 0x11, 0xE0}) { // an OLE compound file
		return nil, refuse(k, "it is password-protected, or in the old binary Office format (.doc, .xls, .ppt), which is not read")
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, refuse(k, "it is not a valid %s package", k.Name())
	}
	p := &pkg{out: out, kind: k, zr: zr, left: MaxExpanded, files: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		p.files[strings.TrimPrefix(f.Name, "/")] = f
	}
	return p, nil
}

var errExpanded = errors.New("expanded too far")

// budgetReader fails once its package's decompression budget is spent.
type budgetReader struct {
	r io.Reader
	p *pkg
}

func (b *budgetReader) Read(buf []byte) (int, error) {
	n, err := b.r.Read(buf)
	if b.p.left -= int64(n); b.p.left < 0 {
		return n, errExpanded
	}
	return n, err
}

// walk streams the XML part name through fn, token by token; a missing
// part is an error only when required. Messages name the part by label:
// part names can come from the file and are never shown.
func (p *pkg) walk(name, label string, required bool, fn func(xml.Token)) error {
	f, ok := p.files[name]
	if !ok {
		if required {
			return refuse(p.kind, "it has no %s, so it is not a valid %s file", label, p.kind.Name())
		}
		return nil
	}
	if f.UncompressedSize64 > uint64(max(p.left, 0)) {
		return refuse(p.kind, "it decompresses to more than %d MB (a zip bomb?)", MaxExpanded>>20)
	}
	rc, err := f.Open()
	if err != nil {
		return refuse(p.kind, "its %s cannot be opened", label)
	}
	defer rc.Close()
	d := xml.NewDecoder(&budgetReader{r: rc, p: p})
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errExpanded) {
			return refuse(p.kind, "it decompresses to more than %d MB (a zip bomb?)", MaxExpanded>>20)
		}
		if err != nil {
			return refuse(p.kind, "its %s is not well-formed XML", label)
		}
		p.out.tick()
		fn(tok)
	}
}

// paragraphs writes text the way word processors lay it out: one line per
// paragraph, table cells separated by " | " and rows by lines. text,
// para, cell and row name the elements (local names) of the format.
type paragraphs struct {
	out                   *output
	text, para, cell, row string
	tab, brk              []string
	skip                  []string // elements whose text is not shown
	inText, inCell        int
	skipping              int
	cells                 int  // cells begun in this row
	space                 bool // a paragraph ended inside the cell
}

func (w *paragraphs) token(tok xml.Token) {
	switch t := tok.(type) {
	case xml.StartElement:
		switch n := t.Name.Local; {
		case slices.Contains(w.skip, n):
			w.skipping++
		case n == w.text:
			w.inText++
		case slices.Contains(w.tab, n):
			w.out.WriteString("\t")
		case slices.Contains(w.brk, n):
			w.out.WriteString("\n")
		case n == w.cell:
			if w.cells > 0 {
				w.out.WriteString(" | ")
			}
			w.inCell, w.cells, w.space = w.inCell+1, w.cells+1, false
		case n == "s" && t.Name.Space == odfText: // OpenDocument's run of spaces
			count := 1
			for _, a := range t.Attr {
				if a.Name.Local == "c" {
					count, _ = strconv.Atoi(a.Value)
				}
			}
			w.out.WriteString(strings.Repeat(" ", min(max(count, 1), 100)))
		}
	case xml.EndElement:
		switch n := t.Name.Local; {
		case slices.Contains(w.skip, n):
			w.skipping--
		case n == w.text:
			w.inText--
		case n == w.para && w.inCell > 0:
			w.space = true
		case n == w.para:
			w.out.WriteString("\n")
		case n == w.cell:
			w.inCell--
		case n == w.row:
			w.out.WriteString("\n")
			w.cells = 0
		}
	case xml.CharData:
		if w.inText > 0 && w.skipping == 0 && len(t) > 0 {
			if w.space && w.inCell > 0 {
				w.out.WriteString(" ")
				w.space = false
			}
			w.out.WriteString(string(t))
		}
	}
}

// readDOCX reads word/document.xml: paragraphs, tabs, breaks, tables.
func readDOCX(out *output, data []byte) error {
	p, err := openPackage(out, DOCX, data)
	if err != nil {
		return err
	}
	w := &paragraphs{out: out, text: "t", para: "p", cell: "tc", row: "tr", tab: []string{"tab"}, brk: []string{"br", "cr"}}
	return p.walk("word/document.xml", "document part (word/document.xml)", true, w.token)
}

// readPPTX reads the slides in their order, each under a heading.
func readPPTX(out *output, data []byte) error {
	p, err := openPackage(out, PPTX, data)
	if err != nil {
		return err
	}
	var slides []int
	for name := range p.files {
		var n int
		if _, err := fmt.Sscanf(name, "ppt/slides/slide%d.xml", &n); err == nil && name == fmt.Sprintf("ppt/slides/slide%d.xml", n) {
			slides = append(slides, n)
		}
	}
	if len(slides) == 0 {
		return refuse(PPTX, "it has no slides")
	}
	slices.Sort(slides)
	for i, n := range slides {
		if i == MaxPages {
			out.WriteString(fmt.Sprintf("… %d more slides not shown.\n", len(slides)-i))
			break
		}
		out.WriteString(fmt.Sprintf("\n## Slide %d\n", i+1))
		w := &paragraphs{out: out, text: "t", para: "p", cell: "tc", row: "tr", brk: []string{"br"}}
		if err := p.walk(fmt.Sprintf("ppt/slides/slide%d.xml", n), fmt.Sprintf("slide %d", i+1), true, w.token); err != nil {
			return err
		}
	}
	return nil
}

// OpenDocument namespaces.
const (
	odfText  = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
	odfTable = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
	odfDraw  = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
)

// readODF reads content.xml of a text document, spreadsheet or
// presentation: paragraphs and headings, tables (sheets) and pages
// (slides) under headings.
func readODF(out *output, data []byte) error {
	p, err := openPackage(out, ODF, data)
	if err != nil {
		return err
	}
	w := &paragraphs{out: out, para: "p", cell: "table-cell", row: "table-row", tab: []string{"tab"}, brk: []string{"line-break"},
		skip: []string{"annotation", "tracked-changes"}}
	return p.walk("content.xml", "content part (content.xml)", true, func(tok xml.Token) {
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Space == odfTable && t.Name.Local == "table":
				out.WriteString("\n## Sheet: " + attr(t, "name") + "\n")
			case t.Name.Space == odfDraw && t.Name.Local == "page":
				out.WriteString("\n## Slide: " + attr(t, "name") + "\n")
			case t.Name.Space == odfText && (t.Name.Local == "p" || t.Name.Local == "h"):
				w.inText++
			}
		case xml.EndElement:
			if t.Name.Space == odfText && (t.Name.Local == "p" || t.Name.Local == "h") {
				w.inText--
				if t.Name.Local == "h" {
					t.Name.Local = "p"
					tok = t
				}
			}
		}
		w.token(tok)
	})
}

func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// readXLSX reads every sheet in workbook order, each under its name, one
// line per row with cells separated by " | " (empty cells kept so that
// columns line up). Numbers are shown as stored (dates as serial numbers).
func readXLSX(out *output, data []byte) error {
	p, err := openPackage(out, XLSX, data)
	if err != nil {
		return err
	}
	targets := map[string]string{}
	err = p.walk("xl/_rels/workbook.xml.rels", "list of sheets (xl/_rels/workbook.xml.rels)", true, func(tok xml.Token) {
		if t, ok := tok.(xml.StartElement); ok && t.Name.Local == "Relationship" {
			target := attr(t, "Target")
			if strings.HasPrefix(target, "/") {
				target = strings.TrimPrefix(target, "/")
			} else {
				target = path.Join("xl", target)
			}
			targets[attr(t, "Id")] = target
		}
	})
	if err != nil {
		return err
	}
	type sheet struct{ name, part string }
	var sheets []sheet
	if err := p.walk("xl/workbook.xml", "workbook part (xl/workbook.xml)", true, func(tok xml.Token) {
		if t, ok := tok.(xml.StartElement); ok && t.Name.Local == "sheet" {
			for _, a := range t.Attr {
				if a.Name.Local == "id" && strings.Contains(a.Name.Space, "relationships") {
					sheets = append(sheets, sheet{attr(t, "name"), targets[a.Value]})
				}
			}
		}
	}); err != nil {
		return err
	}
	var shared []string
	var si strings.Builder
	inT, phonetic, total := false, 0, 0
	if err := p.walk("xl/sharedStrings.xml", "shared strings (xl/sharedStrings.xml)", false, func(tok xml.Token) {
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "si":
				si.Reset()
			case "t":
				inT = true
			case "rPh":
				phonetic++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "si":
				// Normalised once here, not for every cell that shows it.
				if total += si.Len(); total <= MaxOutput {
					shared = append(shared, strings.Join(strings.Fields(si.String()), " "))
				}
			case "t":
				inT = false
			case "rPh":
				phonetic--
			}
		case xml.CharData:
			if inT && phonetic == 0 && si.Len() < maxCell {
				si.Write(t[:min(len(t), maxCell-si.Len())])
			}
		}
	}); err != nil {
		return err
	}
	for i, sh := range sheets {
		if i == MaxPages {
			out.WriteString(fmt.Sprintf("… %d more sheets not shown.\n", len(sheets)-i))
			break
		}
		out.WriteString("\n## Sheet: " + sh.name + "\n")
		if err := readSheet(p, out, sh.part, fmt.Sprintf("sheet %d", i+1), shared); err != nil {
			return err
		}
	}
	return nil
}

// Bounds of one spreadsheet row: Excel's own column limit, and the text
// of one cell.
const (
	maxColumns = 16384
	maxCell    = 32 << 10
)

// readSheet writes the rows of one worksheet part, cells separated by
// " | " and empty cells kept so that columns line up; a row stops at
// maxColumns cells.
func readSheet(p *pkg, out *output, part, label string, shared []string) error {
	var row strings.Builder
	var cellType, value string
	cells, pending := 0, 0 // cells written in this row, empty cells not yet written
	col, inValue := 0, false
	return p.walk(part, label, false, func(tok xml.Token) {
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "row":
				row.Reset()
				cells, pending = 0, 0
			case "c":
				cellType, value = attr(t, "t"), ""
				col = cells + pending
				if c, ok := column(attr(t, "r")); ok && c > col && c < maxColumns {
					col = c
				}
			case "v", "t":
				inValue = true
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "v", "t":
				inValue = false
			case "c":
				if col >= maxColumns || row.Len() > MaxOutput {
					return // the row is full: the rest is not shown
				}
				switch cellType {
				case "s":
					i, err := strconv.Atoi(strings.TrimSpace(value))
					value = ""
					if err == nil && i >= 0 && i < len(shared) {
						value = shared[i]
					}
				case "b":
					value = map[string]string{"1": "TRUE", "0": "FALSE"}[strings.TrimSpace(value)]
				default:
					value = strings.Join(strings.Fields(value), " ")
				}
				pending = col - cells
				if value == "" {
					pending++ // an empty cell is written only when a value follows it
					return
				}
				for ; pending > 0; pending-- {
					if cells > 0 {
						row.WriteString(" | ")
					}
					cells++
				}
				if cells > 0 {
					row.WriteString(" | ")
				}
				row.WriteString(value)
				cells++
			case "row":
				if row.Len() > 0 {
					out.WriteString(row.String() + "\n")
				}
			}
		case xml.CharData:
			if inValue && len(value) < maxCell {
				value += string(t[:min(len(t), maxCell-len(value))])
			}
		}
	})
}

// column returns the zero-based column of a cell reference such as "C7".
func column(ref string) (int, bool) {
	c, n := 0, 0
	for _, r := range ref {
		if r < 'A' || r > 'Z' {
			break
		}
		c, n = c*26+int(r-'A'+1), n+1
	}
	return c - 1, n > 0 && n <= 3
}
