package mcpserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A server is pinned as a whole: what runs (its Identity) and every tool
// it lists (PinnedTool), as first seen or last approved. Anything else
// the server serves later is a change that hides the tools it touches
// until 'ringlet mcp approve'.

// Identity is what runs: for a stdio server the program the daemon
// starts, found as at a start, and the SHA-256 of its file; for a script
// run by an interpreter (node, python3, ...) the script and its digest
// too; for an HTTP server its URL. Note says what could not be digested
// (a package npx or uvx fetches, python -m): such a server is pinned by
// its tool set and its command line alone.
type Identity struct {
	Command      string `json:"command,omitempty"`
	Digest       string `json:"digest,omitempty"`
	Script       string `json:"script,omitempty"`
	ScriptDigest string `json:"script_digest,omitempty"`
	URL          string `json:"url,omitempty"`
	Note         string `json:"note,omitempty"`
}

// Same reports whether a and b are the same program (Note aside).
func (a Identity) Same(b Identity) bool {
	a.Note, b.Note = "", ""
	return a == b
}

// String is the identity on one line.
func (a Identity) String() string {
	if a.URL != "" {
		return a.URL
	}
	s := a.Command + " (" + orNone(a.Digest) + ")"
	if a.Script != "" {
		s += " running " + a.Script + " (" + orNone(a.ScriptDigest) + ")"
	}
	return s
}

func orNone(d string) string {
	if d == "" {
		return "not digested"
	}
	return d
}

// PinnedTool is one tool's definition as pinned: the schemas and
// annotations in canonical JSON (sorted keys, no insignificant space).
// Hash is the SHA-256 of the whole definition with its name; a pin kept
// from before definitions were stored has the Hash alone.
type PinnedTool struct {
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
	Hash         string          `json:"hash"`
}

// recorded reports whether the definition itself was kept (not only its
// hash, as by versions before this one).
func (t PinnedTool) recorded() bool {
	return t.Title != "" || t.Description != "" || len(t.InputSchema)+len(t.OutputSchema)+len(t.Annotations) > 0
}

// sameBody reports whether a and b define the same tool but for its name.
func (t PinnedTool) sameBody(o PinnedTool) bool {
	return t.recorded() && t.Title == o.Title && t.Description == o.Description && sameJSON(t.InputSchema, o.InputSchema) &&
		sameJSON(t.OutputSchema, o.OutputSchema) && sameJSON(t.Annotations, o.Annotations)
}

// sameJSON compares canonical JSON as stored (which may be indented) and
// as observed.
func sameJSON(a, b json.RawMessage) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}

// Pin is a server as approved: its identity and its tool set.
type Pin struct {
	// Identity is pinned when the server is added (so that what runs at
	// its first start is checked too), or at its first start.
	Identity *Identity `json:"identity,omitempty"`
	// ToolsPinned says Tools were seen: a server that lists no tool has
	// an empty set, one never started none.
	ToolsPinned bool                  `json:"tools_pinned,omitempty"`
	Tools       map[string]PinnedTool `json:"tools,omitempty"`
	// CatalogPinned says the prompts, resources and resource templates
	// were seen: a pin made before they were pinned has none, and an
	// observation of a server not running does not know them.
	CatalogPinned bool `json:"catalog_pinned,omitempty"`
	// Prompts by name, Resources by URI, Templates by URI template.
	// What a resource holds is data, read when asked: not pinned.
	Prompts   map[string]PinnedItem `json:"prompts,omitempty"`
	Resources map[string]PinnedItem `json:"resources,omitempty"`
	Templates map[string]PinnedItem `json:"templates,omitempty"`
}

// Kinds of catalog item, in ItemDiff.Kind.
const (
	KindPrompt   = "prompt"
	KindResource = "resource"
	KindTemplate = "template"
)

// PinnedItem is what a server says of one prompt (by name), resource (by
// URI) or resource template (by URI template): what reaches the model
// when a session lists them.
type PinnedItem struct {
	Name        string `json:"name,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MIMEType    string `json:"mime_type,omitempty"`
	// Arguments are a prompt's, as JSON.
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

func (a PinnedItem) same(b PinnedItem) bool {
	return a.Name == b.Name && a.Title == b.Title && a.Description == b.Description && a.MIMEType == b.MIMEType && sameJSON(a.Arguments, b.Arguments)
}

// items are p's items of kind.
func (p Pin) items(kind string) map[string]PinnedItem {
	switch kind {
	case KindPrompt:
		return p.Prompts
	case KindResource:
		return p.Resources
	}
	return p.Templates
}

var itemKinds = []string{KindPrompt, KindResource, KindTemplate}

// Clone returns a copy of p that shares nothing with it.
func (p *Pin) Clone() *Pin {
	if p == nil {
		return nil
	}
	c := *p
	if p.Identity != nil {
		id := *p.Identity
		c.Identity = &id
	}
	c.Tools = maps.Clone(p.Tools)
	c.Prompts, c.Resources, c.Templates = maps.Clone(p.Prompts), maps.Clone(p.Resources), maps.Clone(p.Templates)
	return &c
}

// Digest names an observation, so that an approval applies to exactly
// the diff that was shown: one made against another is refused.
func (p Pin) Digest() string {
	b, _ := json.Marshal(p) // only strings, maps and valid JSON
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Kinds of change in ToolStatus.Change and ToolDiff.Change.
const (
	ChangeAdded    = "added"
	ChangeChanged  = "changed"
	ChangeRenamed  = "renamed"
	ChangeIdentity = "identity"
	ChangeRemoved  = "removed" // of a catalog item (ItemDiff)
)

// IdentityChange is a server's program replaced: every tool it lists is
// hidden until the server is approved whole.
type IdentityChange struct {
	Before Identity `json:"before"`
	After  Identity `json:"after"`
}

// ToolDiff is one tool that is not as approved.
type ToolDiff struct {
	Name string `json:"name"`
	// Change is ChangeAdded, ChangeChanged or ChangeRenamed (From is the
	// removed tool it looks like: the same definition but the name).
	Change string `json:"change"`
	From   string `json:"from,omitempty"`
	// Fields are those that differ: title, description, input_schema,
	// output_schema, annotations (or definition, for a pin kept from
	// before definitions were stored).
	Fields []string `json:"fields,omitempty"`
	// Diff is a compact unified diff of the fields that differ (the
	// schemas pretty-printed); for an added tool, its whole definition.
	Diff string `json:"diff,omitempty"`
}

// PinDiff is how what a server serves now differs from what was approved.
type PinDiff struct {
	Identity *IdentityChange `json:"identity,omitempty"`
	// Tools are the tools listed now that are not approved: hidden.
	Tools []ToolDiff `json:"tools"`
	// Removed are approved tools the server no longer lists (a renamed
	// one is in Tools, with From).
	Removed []string `json:"removed"`
	// Items are the prompts, resources and resource templates added,
	// changed or removed: an added or changed one is hidden.
	Items []ItemDiff `json:"items"`
	// Observed names what the server serves now (Pin.Digest): pass it
	// back to approve exactly this.
	Observed string `json:"observed"`
}

// ItemDiff is one prompt, resource or resource template that is not as
// approved.
type ItemDiff struct {
	// Kind is KindPrompt, KindResource or KindTemplate.
	Kind string `json:"kind"`
	// Name is the prompt's name, the resource's URI or the template's
	// URI template, as the server lists it.
	Name string `json:"name"`
	// Change is ChangeAdded, ChangeChanged or ChangeRemoved.
	Change string `json:"change"`
	// Fields are those that differ: name, title, description,
	// mime_type, arguments.
	Fields []string `json:"fields,omitempty"`
	// Diff is a compact unified diff of the fields that differ; for an
	// added item, all of it.
	Diff string `json:"diff,omitempty"`
}

// Ref is how an approval names the item: a tool by its name (no ':' in
// it), a prompt as prompt:NAME, a resource or template as resource:URI.
func (i ItemDiff) Ref() string {
	if i.Kind == KindPrompt {
		return KindPrompt + ":" + i.Name
	}
	return KindResource + ":" + i.Name
}

// Empty reports whether nothing changed.
func (d PinDiff) Empty() bool {
	return d.Identity == nil && len(d.Tools) == 0 && len(d.Removed) == 0 && len(d.Items) == 0
}

// HiddenItems are the prompts, resources and templates the change hides,
// by kind and name (with a new identity the whole catalog is hidden).
func (d PinDiff) HiddenItems() map[ItemKey]string {
	out := map[ItemKey]string{}
	for _, i := range d.Items {
		if i.Change != ChangeRemoved {
			out[ItemKey{i.Kind, i.Name}] = i.Change
		}
	}
	return out
}

// ItemKey names a catalog item: its kind and its name, URI or template.
type ItemKey struct{ Kind, Name string }

// Hidden are the tools the change hides: with a new identity, all of
// those listed now.
func (d PinDiff) Hidden(observed Pin) []string {
	if d.Identity != nil {
		return slices.Sorted(maps.Keys(observed.Tools))
	}
	out := make([]string, 0, len(d.Tools))
	for _, t := range d.Tools {
		out = append(out, t.Name)
	}
	return out
}

// Diff compares what a server serves now with its pin. A pin whose tools
// were never seen (a server added but not yet started) counts every tool
// as added; one without an identity takes observed's.
func Diff(pinned Pin, observed Pin) PinDiff { return DiffDigest(pinned, observed, observed.Digest()) }

// DiffDigest is Diff with observed's digest already made.
func DiffDigest(pinned Pin, observed Pin, digest string) PinDiff {
	d := PinDiff{Tools: []ToolDiff{}, Removed: []string{}, Items: []ItemDiff{}, Observed: digest}
	if pinned.Identity != nil && observed.Identity != nil && !pinned.Identity.Same(*observed.Identity) {
		d.Identity = &IdentityChange{Before: *pinned.Identity, After: *observed.Identity}
	}
	var added []string
	for _, name := range slices.Sorted(maps.Keys(observed.Tools)) {
		now := observed.Tools[name]
		was, ok := pinned.Tools[name]
		switch {
		case !ok:
			added = append(added, name)
		case was.Hash != now.Hash:
			d.Tools = append(d.Tools, changedTool(name, was, now))
		}
	}
	var removed []string
	for _, name := range slices.Sorted(maps.Keys(pinned.Tools)) {
		if _, ok := observed.Tools[name]; !ok {
			removed = append(removed, name)
		}
	}
	// An added tool with the definition of a removed one looks renamed.
	for _, name := range added {
		now := observed.Tools[name]
		i := slices.IndexFunc(removed, func(r string) bool { return pinned.Tools[r].sameBody(now) })
		if i < 0 {
			d.Tools = append(d.Tools, ToolDiff{Name: name, Change: ChangeAdded, Diff: UnifiedDiff("", describe(now))})
			continue
		}
		d.Tools = append(d.Tools, ToolDiff{Name: name, Change: ChangeRenamed, From: removed[i], Fields: []string{"name"}})
		removed = slices.Delete(removed, i, i+1)
	}
	slices.SortFunc(d.Tools, func(a, b ToolDiff) int { return strings.Compare(a.Name, b.Name) })
	d.Removed = append(d.Removed, removed...)
	if observed.CatalogPinned {
		d.Items = diffItems(pinned, observed)
	}
	return d
}

// diffItems compares the catalogs; one never pinned counts every item as
// added.
func diffItems(pinned, observed Pin) []ItemDiff {
	out := []ItemDiff{}
	for _, kind := range itemKinds {
		was, now := pinned.items(kind), observed.items(kind)
		for _, name := range slices.Sorted(maps.Keys(now)) {
			n := now[name]
			w, ok := was[name]
			switch {
			case !ok:
				out = append(out, ItemDiff{Kind: kind, Name: name, Change: ChangeAdded, Diff: UnifiedDiff("", describeItem(n))})
			case !w.same(n):
				out = append(out, changedItem(kind, name, w, n))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(was)) {
			if _, ok := now[name]; !ok {
				out = append(out, ItemDiff{Kind: kind, Name: name, Change: ChangeRemoved})
			}
		}
	}
	return out
}

func changedItem(kind, name string, was, now PinnedItem) ItemDiff {
	d := ItemDiff{Kind: kind, Name: name, Change: ChangeChanged}
	var diffs []string
	for _, f := range itemFields(was, now) {
		if f.was == f.now {
			continue
		}
		d.Fields = append(d.Fields, f.name)
		diffs = append(diffs, f.name+":\n"+UnifiedDiff(f.was, f.now))
	}
	d.Diff = strings.Join(diffs, "")
	return d
}

type itemField struct{ name, was, now string }

func itemFields(was, now PinnedItem) []itemField {
	return []itemField{
		{"name", was.Name, now.Name},
		{"title", was.Title, now.Title},
		{"description", was.Description, now.Description},
		{"mime_type", was.MIMEType, now.MIMEType},
		{"arguments", pretty(was.Arguments), pretty(now.Arguments)},
	}
}

// describeItem is an item's whole definition, as the diff of an added one.
func describeItem(i PinnedItem) string {
	var b strings.Builder
	for _, f := range itemFields(PinnedItem{}, i) {
		if f.now != "" {
			fmt.Fprintf(&b, "%s: %s\n", f.name, f.now)
		}
	}
	return b.String()
}

func changedTool(name string, was, now PinnedTool) ToolDiff {
	t := ToolDiff{Name: name, Change: ChangeChanged}
	if !was.recorded() {
		t.Fields = []string{"definition"}
		t.Diff = "(the definition approved before this version of Ringlet was not kept, only its hash)\n" + UnifiedDiff("", describe(now))
		return t
	}
	var diffs []string
	for _, f := range []struct {
		name     string
		was, now string
	}{
		{"title", was.Title, now.Title},
		{"description", was.Description, now.Description},
		{"input_schema", pretty(was.InputSchema), pretty(now.InputSchema)},
		{"output_schema", pretty(was.OutputSchema), pretty(now.OutputSchema)},
		{"annotations", pretty(was.Annotations), pretty(now.Annotations)},
	} {
		if f.was == f.now {
			continue
		}
		t.Fields = append(t.Fields, f.name)
		diffs = append(diffs, f.name+":\n"+UnifiedDiff(f.was, f.now))
	}
	if len(t.Fields) == 0 {
		// The same fields, hashed otherwise (by another version).
		t.Fields = []string{"definition"}
	}
	t.Diff = strings.Join(diffs, "")
	return t
}

// describe is a tool's whole definition, as the diff of an added tool.
func describe(t PinnedTool) string {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "title: %s\n", t.Title)
	}
	if t.Description != "" {
		fmt.Fprintf(&b, "description: %s\n", t.Description)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"input_schema", t.InputSchema}, {"output_schema", t.OutputSchema}, {"annotations", t.Annotations}} {
		if len(f.raw) > 0 && string(f.raw) != "null" {
			fmt.Fprintf(&b, "%s: %s\n", f.name, pretty(f.raw))
		}
	}
	return b.String()
}

// pretty indents JSON so that a diff of it is one change a line.
func pretty(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// Limits of UnifiedDiff: past them, the lines are shown whole.
const (
	diffContext  = 2
	maxDiffLines = 2000
	maxDiffBytes = 16 << 10
)

// UnifiedDiff is a compact line diff of a and b: lines removed ("-"),
// added ("+") and up to two unchanged around each change (" "), hunks
// apart marked "@@". It is bounded: a long one ends with a note.
func UnifiedDiff(a, b string) string {
	x, y := splitLines(a), splitLines(b)
	var ops []string
	if len(x)*len(y) > maxDiffLines*maxDiffLines/4 || len(x) > maxDiffLines || len(y) > maxDiffLines {
		for _, l := range x {
			ops = append(ops, "-"+l)
		}
		for _, l := range y {
			ops = append(ops, "+"+l)
		}
	} else {
		ops = lineOps(x, y)
	}
	// Keep the changes and their context.
	keep := make([]bool, len(ops))
	for i, op := range ops {
		if op[0] == ' ' {
			continue
		}
		for j := max(0, i-diffContext); j <= min(len(ops)-1, i+diffContext); j++ {
			keep[j] = true
		}
	}
	var out strings.Builder
	gap := false
	for i, op := range ops {
		if !keep[i] {
			gap = true
			continue
		}
		if gap && out.Len() > 0 {
			out.WriteString("@@\n")
		}
		gap = false
		if out.Len()+len(op) > maxDiffBytes {
			out.WriteString("... (diff cut short)\n")
			break
		}
		out.WriteString(op + "\n")
	}
	return out.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineOps is the longest-common-subsequence edit script of x into y.
func lineOps(x, y []string) []string {
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []string
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case x[i] == y[j]:
			ops = append(ops, " "+x[i])
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, "-"+x[i])
			i++
		default:
			ops = append(ops, "+"+y[j])
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, "-"+x[i])
	}
	for ; j < m; j++ {
		ops = append(ops, "+"+y[j])
	}
	return ops
}

// Approve applies an approval of observed to pinned: all of it when tools
// is empty, else only those tools (a renamed one takes its old name's
// pin away; a removed one named drops its pin). A new identity can only
// be approved whole.
//
// A prompt is named prompt:NAME and a resource or resource template
// resource:URI (ItemDiff.Ref): tool names hold no ':'.
func Approve(pinned Pin, observed Pin, tools []string) (Pin, error) {
	if len(tools) == 0 {
		observed.ToolsPinned = true
		if !observed.CatalogPinned {
			// Not known now (the server is not running): what was
			// approved stays, and what it serves is judged when known.
			observed.CatalogPinned = pinned.CatalogPinned
			observed.Prompts, observed.Resources, observed.Templates = pinned.Prompts, pinned.Resources, pinned.Templates
		}
		return observed, nil
	}
	d := Diff(pinned, observed)
	if err := d.CheckApprove(tools); err != nil {
		return Pin{}, err
	}
	out := *pinned.Clone()
	if out.Tools == nil {
		out.Tools = map[string]PinnedTool{}
	}
	out.ToolsPinned = true
	for _, name := range tools {
		if approveItem(&out, observed, d, name) {
			continue
		}
		i := slices.IndexFunc(d.Tools, func(t ToolDiff) bool { return t.Name == name })
		switch {
		case i >= 0:
			out.Tools[name] = observed.Tools[name]
			if from := d.Tools[i].From; from != "" {
				delete(out.Tools, from)
			}
		case slices.Contains(d.Removed, name):
			delete(out.Tools, name)
		}
	}
	return out, nil
}

// approveItem applies the approval of ref to out if it names a catalog
// item, and reports whether it did.
func approveItem(out *Pin, observed Pin, d PinDiff, ref string) bool {
	if !strings.Contains(ref, ":") {
		return false
	}
	if !out.CatalogPinned {
		out.CatalogPinned = true
		out.Prompts, out.Resources, out.Templates = nil, nil, nil
	}
	for _, i := range d.Items {
		if i.Ref() != ref {
			continue
		}
		m := out.items(i.Kind)
		if m == nil {
			m = map[string]PinnedItem{}
			switch i.Kind {
			case KindPrompt:
				out.Prompts = m
			case KindResource:
				out.Resources = m
			default:
				out.Templates = m
			}
		}
		if i.Change == ChangeRemoved {
			delete(m, i.Name)
		} else {
			m[i.Name] = observed.items(i.Kind)[i.Name]
		}
	}
	return true
}

// CheckApprove says whether an approval of the named tools (none: all)
// can be made of d: each must have a change, and a new identity is
// approved whole.
func (d PinDiff) CheckApprove(tools []string) error {
	if len(tools) == 0 {
		return nil
	}
	if d.Identity != nil {
		return &ApproveError{fmt.Sprintf("the server's program changed (now %s, was %s): approve the server whole, without --tool", d.Identity.After, d.Identity.Before)}
	}
	for _, name := range tools {
		if strings.Contains(name, ":") {
			if !slices.ContainsFunc(d.Items, func(i ItemDiff) bool { return i.Ref() == name }) {
				return &ApproveError{fmt.Sprintf("%s has no change to approve (changed: %s)", name, pendingNames(d))}
			}
			continue
		}
		if !slices.ContainsFunc(d.Tools, func(t ToolDiff) bool { return t.Name == name }) && !slices.Contains(d.Removed, name) {
			return &ApproveError{fmt.Sprintf("tool %s has no change to approve (changed: %s)", name, pendingNames(d))}
		}
	}
	return nil
}

// ApproveError is an approval of what cannot be approved so.
type ApproveError struct{ msg string }

func (e *ApproveError) Error() string { return e.msg }

func pendingNames(d PinDiff) string {
	var names []string
	for _, t := range d.Tools {
		names = append(names, t.Name)
	}
	names = append(names, d.Removed...)
	for _, i := range d.Items {
		names = append(names, i.Ref())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
