package helm

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerfile is what the tests read of the Dockerfile's final stage.
type dockerfile struct {
	from       string
	user       string
	entrypoint string
	// copies maps a COPY destination of the final stage to its source.
	copies map[string]string
	// runs are the RUN lines of every stage, joined across continuations.
	runs []string
}

func readDockerfile(t testing.TB) dockerfile {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			d = dockerfile{from: rest, copies: map[string]string{}, runs: d.runs}
		case "USER":
			d.user = rest
		case "COPY":
			fields := strings.Fields(rest)
			d.copies[fields[len(fields)-1]] = fields[len(fields)-2]
		case "RUN":
			d.runs = append(d.runs, rest)
		}
	}
	ep := imageEntrypoint(t)
	d.entrypoint = ep[0]
	return d
}

// The image the chart runs: the strata binary as its entrypoint, a
// non-root user that is the chart's, a base without a shell, and a static
// build. Without a Docker engine here, this reads the Dockerfile and
// builds the binary with its flags.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if !strings.Contains(d.from, "distroless/static") || !strings.HasSuffix(d.from, ":nonroot") {
		t.Errorf("final stage FROM %s: want a distroless static nonroot base", d.from)
	}
	if _, ok := d.copies[d.entrypoint]; !ok {
		t.Errorf("ENTRYPOINT %s is not a file the final stage copies (%v)", d.entrypoint, d.copies)
	}
	uid, _, _ := strings.Cut(d.user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root user, so runAsNonRoot can check it", d.user)
	}
	chartValues, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  runAsUser: ` + regexp.QuoteMeta(uid) + `$`).Match(chartValues) {
		t.Errorf("the chart's podSecurityContext.runAsUser is not the image's user %s", uid)
	}
	var build string
	for _, r := range d.runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/strata") {
		t.Fatalf("the Dockerfile's build %q must build ./cmd/strata with CGO_ENABLED=0", build)
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	repo := regexp.MustCompile(`(?m)^  repository: (\S+)$`).FindSubmatch(chartValues)
	if repo == nil || !strings.Contains(string(makefile), "IMAGE     ?= "+string(repo[1])+":$(IMAGE_TAG)") {
		t.Errorf("make image does not build the chart's default image repository %q", repo)
	}

	if testing.Short() {
		t.Skip("-short: not building the static binary")
	}
	// The binary as the Dockerfile builds it must need no dynamic loader:
	// the distroless static base has no libc. CGO_ENABLED=0 alone decides
	// that; the Dockerfile's other flags (-trimpath, -s -w) are left out so
	// that the build reuses more of the cache.
	out := filepath.Join(t.TempDir(), "strata")
	// Bounded by the test's deadline: a build still running when the test
	// binary times out would outlive it.
	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/strata")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	bin, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the image's binary is dynamically linked (program header %v)", p.Type)
		}
	}
}
