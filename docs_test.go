package caddyherd

// These tests keep README.md and docs/*.md true to the repository: every
// relative link must reach a file and every anchor a heading, and every
// Caddyfile they show must adapt.
//
// A fenced block whose info string begins with `caddyfile` is a whole
// Caddyfile and is run through the Caddyfile adapter, unless its info string
// also says `fragment` (```caddyfile fragment): a part of a Caddyfile, shown
// out of its surroundings, which cannot be adapted alone. A block that shows
// a file of the repository names it with `file=<path>` (```caddyfile
// file=Caddyfile.example), relative to the markdown file; it must equal that
// file byte for byte, so that the copy in the docs cannot drift.

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mholt/caddy-l4"
)

// docFiles returns the markdown files the tests check.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"README.md"}, files...)
}

// mdLink is a link target found in a markdown file.
type mdLink struct {
	line   int
	target string
}

// mdFence is a fenced code block.
type mdFence struct {
	line int    // the line of the opening fence
	info string // the info string after the opening fence
	body string // the lines between the fences, each ending in "\n"
}

// mdDoc is what the tests need of a markdown file.
type mdDoc struct {
	links    []mdLink
	headings []string // the headings' text, in order
	fences   []mdFence
}

var (
	// linkPattern matches an inline link or image, [text](target) with an
	// optional "title"; its group is the target.
	linkPattern = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// headingPattern matches an ATX heading; its text is the second group.
	headingPattern = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	// fencePattern matches an opening or closing code fence.
	fencePattern = regexp.MustCompile("^([ \t]*)(`{3,}|~{3,})(.*)$")
	// schemePattern matches a target that is a URL with a scheme
	// (https:, mailto:), which the tests leave alone.
	schemePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// parseMarkdown finds the links, headings and fenced blocks of a markdown
// text. Links and headings inside fenced blocks and links inside code spans
// are not links; indented code blocks and setext headings are not
// recognised (the docs use neither).
func parseMarkdown(text string) mdDoc {
	var doc mdDoc
	var open *mdFence
	var marker, indent string
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if open != nil {
			m := fencePattern.FindStringSubmatch(line)
			if m != nil && m[2][0] == marker[0] && len(m[2]) >= len(marker) && strings.TrimSpace(m[3]) == "" {
				open.body = body.String()
				doc.fences = append(doc.fences, *open)
				open = nil
				continue
			}
			body.WriteString(strings.TrimPrefix(line, indent))
			body.WriteByte('\n')
			continue
		}
		if m := fencePattern.FindStringSubmatch(line); m != nil && !(m[2][0] == '`' && strings.Contains(m[3], "`")) {
			open = &mdFence{line: n, info: strings.TrimSpace(m[3])}
			indent, marker = m[1], m[2]
			body.Reset()
			continue
		}
		line = stripCodeSpans(line)
		if m := headingPattern.FindStringSubmatch(line); m != nil {
			doc.headings = append(doc.headings, m[2])
		}
		for _, m := range linkPattern.FindAllStringSubmatch(line, -1) {
			doc.links = append(doc.links, mdLink{line: n, target: m[1]})
		}
	}
	if open != nil {
		// An unclosed fence runs to the end of the file, as CommonMark has it.
		open.body = body.String()
		doc.fences = append(doc.fences, *open)
	}
	return doc
}

// stripCodeSpans returns line with the backticks of its code spans removed,
// and their brackets and parentheses too, so that nothing in code reads as a
// link; the code's text stays, as it does in a heading's anchor. A run of
// backticks without a matching run is left as it is.
func stripCodeSpans(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' {
			b.WriteByte(line[i])
			i++
			continue
		}
		n := 1
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		run := line[i : i+n]
		end := -1
		for j := i + n; j < len(line); {
			k := strings.Index(line[j:], run)
			if k < 0 {
				break
			}
			k += j
			m := k + n
			if (k == 0 || line[k-1] != '`') && (m == len(line) || line[m] != '`') {
				end = k
				break
			}
			j = m
			for j < len(line) && line[j] == '`' {
				j++
			}
		}
		if end < 0 {
			b.WriteString(run)
			i += n
			continue
		}
		// Brackets and parentheses of the code go, so that the code cannot
		// open or close a link around it.
		b.WriteString(strings.Map(func(r rune) rune {
			if strings.ContainsRune("[]()", r) {
				return -1
			}
			return r
		}, line[i+n:end]))
		i = end + n
	}
	return b.String()
}

// inlineLink matches a link or image in a heading, whose text is kept.
var inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// githubSlug returns the anchor GitHub gives a heading: its text as rendered
// (links replaced by their text; code spans already stripped), in lower
// case, without any character but letters, digits, marks, '-', '_' and
// spaces, with each space turned into '-'.
func githubSlug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of a document's headings. A slug that is
// already an anchor gets -1, -2 and so on, the first of those not taken, as
// on GitHub.
func anchors(headings []string) map[string]bool {
	count := make(map[string]int) // anchors made from a slug, beyond the first
	out := make(map[string]bool)
	for _, h := range headings {
		slug := githubSlug(h)
		anchor := slug
		for out[anchor] {
			count[slug]++
			anchor = fmt.Sprintf("%s-%d", slug, count[slug])
		}
		out[anchor] = true
	}
	return out
}

// readDoc parses a markdown file, once per test run.
func readDoc(t *testing.T, cache map[string]mdDoc, path string) mdDoc {
	t.Helper()
	if doc, ok := cache[path]; ok {
		return doc
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseMarkdown(string(text))
	cache[path] = doc
	return doc
}

// TestDocsLinks checks every relative link of README.md and docs/*.md: the
// file it names exists, and its anchor, if any, is a heading of the markdown
// file it points into.
func TestDocsLinks(t *testing.T) {
	cache := make(map[string]mdDoc)
	for _, file := range docFiles(t) {
		t.Run(file, func(t *testing.T) {
			doc := readDoc(t, cache, file)
			for _, l := range doc.links {
				if err := checkLink(t, cache, file, l.target); err != nil {
					t.Errorf("%s:%d: link %q: %v", file, l.line, l.target, err)
				}
			}
		})
	}
}

// checkLink says what is wrong with a link target in file, if anything.
func checkLink(t *testing.T, cache map[string]mdDoc, file, target string) error {
	if target == "" {
		return fmt.Errorf("empty target")
	}
	if schemePattern.MatchString(target) {
		return nil
	}
	path, anchor, _ := strings.Cut(target, "#")
	path, err := url.PathUnescape(path)
	if err != nil {
		return err
	}
	dest := file
	if path != "" {
		if filepath.IsAbs(path) || strings.HasPrefix(path, "/") {
			return fmt.Errorf("not relative to the file")
		}
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("no such file or directory: %s", dest)
		}
	}
	if anchor == "" {
		return nil
	}
	if filepath.Ext(dest) != ".md" {
		return fmt.Errorf("an anchor into %s, which is not markdown, cannot be checked", dest)
	}
	if !anchors(readDoc(t, cache, dest).headings)[anchor] {
		return fmt.Errorf("%s has no heading with anchor #%s", dest, anchor)
	}
	return nil
}

// TestDocsCaddyfiles adapts every whole Caddyfile shown in README.md and
// docs/*.md, and compares each block that names its file with that file.
func TestDocsCaddyfiles(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("no caddyfile adapter registered")
	}
	cache := make(map[string]mdDoc)
	adapted := 0
	for _, file := range docFiles(t) {
		for _, f := range readDoc(t, cache, file).fences {
			words := strings.Fields(f.info)
			if len(words) == 0 || words[0] != "caddyfile" {
				continue
			}
			t.Run(fmt.Sprintf("%s:%d", file, f.line), func(t *testing.T) {
				for _, w := range words[1:] {
					switch {
					case w == "fragment":
					case strings.HasPrefix(w, "file="):
						shown := filepath.Join(filepath.Dir(file), filepath.FromSlash(strings.TrimPrefix(w, "file=")))
						want, err := os.ReadFile(shown)
						if err != nil {
							t.Fatalf("%s:%d: %v", file, f.line, err)
						}
						if string(want) != f.body {
							t.Errorf("%s:%d: the block differs from %s", file, f.line, shown)
						}
					default:
						t.Fatalf("%s:%d: unknown word %q in the info string (want fragment or file=<path>)", file, f.line, w)
					}
				}
				if slices.Contains(words[1:], "fragment") {
					t.Skip("a fragment")
				}
				adapted++
				_, _, err := adapter.Adapt([]byte(f.body), map[string]any{"filename": "Caddyfile"})
				if err != nil {
					t.Errorf("%s: the Caddyfile in the block at line %d does not adapt (mark it `caddyfile fragment` if it is not a whole file): %v", file, f.line, err)
				}
			})
		}
	}
	if adapted == 0 {
		t.Error("no whole Caddyfile found in the docs")
	}
}

func TestGitHubSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Run the example herd", "run-the-example-herd"},
		{"The catch-up exchange", "the-catch-up-exchange"},
		{stripCodeSpans("`caddy herd`"), "caddy-herd"},
		{stripCodeSpans("`herd` (global option)"), "herd-global-option"},
		{stripCodeSpans("`places google_legacy`"), "places-google_legacy"},
		{"IAMAT → AT", "iamat--at"},
		{"What's new? 1.0, 2.0!", "whats-new-10-20"},
		{"[Storage](docs/reliability.md) on disk", "storage-on-disk"},
		{"Über café", "über-café"},
	}
	for _, tt := range tests {
		if got := githubSlug(tt.heading); got != tt.want {
			t.Errorf("githubSlug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestAnchorsOfDuplicateHeadings(t *testing.T) {
	got := anchors([]string{"Limits", "Errors", "Limits", "Limits", "Limits-1"})
	for _, a := range []string{"limits", "errors", "limits-1", "limits-2", "limits-1-1"} {
		if !got[a] {
			t.Errorf("no anchor %q in %v", a, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("anchors %v, want 5", got)
	}
}

func TestParseMarkdown(t *testing.T) {
	text := strings.Join([]string{
		"# Title",
		"See [the docs](docs/a.md#x) and [site](https://example.com), ![a picture](pic.png \"title\").",
		"Not a link: `[x](nowhere.md)`, nor ``a `[y](z)` b``; but [`code`](b.md) is.",
		"```caddyfile fragment",
		"[in](fence.md)",
		"# not a heading",
		"```",
		"## `herd` (layer4 handler) ##",
		"~~~",
		"```",
		"~~~",
		"    ```sh",
		"    go test ./...",
		"    ```",
		"[last](#title)",
	}, "\n")
	doc := parseMarkdown(text)
	wantLinks := []mdLink{{2, "docs/a.md#x"}, {2, "https://example.com"}, {2, "pic.png"}, {3, "b.md"}, {15, "#title"}}
	if !slices.Equal(doc.links, wantLinks) {
		t.Errorf("links %v, want %v", doc.links, wantLinks)
	}
	wantHeadings := []string{"Title", "herd (layer4 handler)"}
	if !slices.Equal(doc.headings, wantHeadings) {
		t.Errorf("headings %q, want %q", doc.headings, wantHeadings)
	}
	wantFences := []mdFence{
		{4, "caddyfile fragment", "[in](fence.md)\n# not a heading\n"},
		{9, "", "```\n"},
		{12, "sh", "go test ./...\n"},
	}
	if !slices.Equal(doc.fences, wantFences) {
		t.Errorf("fences %+v, want %+v", doc.fences, wantFences)
	}
}
