package layering

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stratametrics/strata"

// rule is one row of the package table: the packages it is about (each
// covering its subpackages that have no row of their own) and the
// module's packages they may import.
type rule struct {
	pkgs     []string
	allowed  []string
	anything bool
}

// readTable parses the package table of docs/ARCHITECTURE.md: rows of
// "| `pkg/`, `pkg2` | job | may import |", where the last column's
// backquoted names are packages of the module (or third-party modules,
// which this test leaves to go.mod), or says "anything".
func readTable(t *testing.T) []rule {
	t.Helper()
	doc, err := os.ReadFile("../../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile("`([^`]+)`")
	var rules []rule
	inTable := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| package | job | may import |") {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) < 3 {
			t.Fatalf("package table row with %d columns: %s", len(cols), line)
		}
		var r rule
		for _, m := range quoted.FindAllStringSubmatch(cols[0], -1) {
			r.pkgs = append(r.pkgs, strings.TrimSuffix(m[1], "/"))
		}
		last := cols[len(cols)-1]
		r.anything = strings.TrimSpace(last) == "anything"
		for _, m := range quoted.FindAllStringSubmatch(last, -1) {
			r.allowed = append(r.allowed, strings.TrimSuffix(m[1], "/"))
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		t.Fatal("docs/ARCHITECTURE.md has no package table")
	}
	return rules
}

// within tells whether pkg is p or one of its subpackages.
func within(pkg, p string) bool { return pkg == p || strings.HasPrefix(pkg, p+"/") }

// ruleOf is the row of the longest package that holds pkg.
func ruleOf(rules []rule, pkg string) (rule, string, bool) {
	var best rule
	bestName, found := "", false
	for _, r := range rules {
		for _, p := range r.pkgs {
			if within(pkg, p) && len(p) > len(bestName) {
				best, bestName, found = r, p, true
			}
		}
	}
	return best, bestName, found
}

type listed struct {
	ImportPath string
	Imports    []string
}

// TestImportsFollowTheArchitecture: every package of the module has a row
// in the package table, and imports only what its row allows (its own
// subpackages and the packages named, with theirs).
func TestImportsFollowTheArchitecture(t *testing.T) {
	rules := readTable(t)
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkg, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok || within(pkg, "tools") {
			continue // the module itself has no package at its root; tools/ are modules of their own
		}
		seen++
		r, row, ok := ruleOf(rules, pkg)
		if !ok {
			t.Errorf("%s has no row in docs/ARCHITECTURE.md's package table", pkg)
			continue
		}
		if r.anything {
			continue
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok || within(dep, row) {
				continue
			}
			if !slices.ContainsFunc(r.allowed, func(a string) bool { return within(dep, a) }) {
				t.Errorf("%s imports %s, which its row (`%s`) does not allow: %v", pkg, dep, row, r.allowed)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list named only %d packages of the module", seen)
	}
}

// TestTableRejectsAnUnlistedImport: the check itself, on a made-up row.
func TestTableRejectsAnUnlistedImport(t *testing.T) {
	rules := []rule{{pkgs: []string{"shard"}, allowed: []string{"remotewrite"}}, {pkgs: []string{"blockbuilder"}, allowed: []string{"bucket"}}, {pkgs: []string{"blockbuilder/shipper"}}}
	r, row, ok := ruleOf(rules, "blockbuilder/shipper")
	if !ok || row != "blockbuilder/shipper" || len(r.allowed) != 0 {
		t.Fatalf("the longest row must win: %v %q", r, row)
	}
	if r, _, _ := ruleOf(rules, "shard/sub"); !slices.ContainsFunc(r.allowed, func(a string) bool { return within("remotewrite/x", a) }) {
		t.Fatal("a subpackage of an allowed package must be allowed")
	}
	if _, _, ok := ruleOf(rules, "functions"); ok {
		t.Fatal("a package without a row must be found missing")
	}
}
