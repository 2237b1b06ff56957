package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The test binary doubles as the process under test: with helperEnv set it
// serves HTTP on the address given and exits 0 on SIGTERM.
const helperEnv = "HARNESS_TEST_HELPER_ADDR"

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		os.Exit(helperServe(addr))
	}
	if n := os.Getenv(portHolderEnv); n != "" {
		os.Exit(holdPorts(n))
	}
	os.Exit(m.Run())
}

func helperServe(addr string) int {
	fmt.Println("helper: listening on", addr, "STRATA_LEAK="+os.Getenv("STRATA_LEAK"))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("helper:", err)
		return 3
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(l)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	fmt.Println("helper: terminated")
	srv.Close()
	return 0
}

func startHelper(t *testing.T) (*Process, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	p := StartProcess(t, self, nil, []string{helperEnv + "=" + addr})
	p.WaitHTTP("http://"+addr+"/", 10*time.Second)
	return p, addr
}

func alive(pid int) bool {
	// Signal 0 checks for existence; a reaped child is gone.
	return syscall.Kill(pid, 0) == nil
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q, want loopback", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port from FreeAddr not bindable: %v", err)
	}
	l.Close()
}

func TestToolEnv(t *testing.T) {
	for name, want := range map[string]string{
		"strata":       "STRATA_TEST_BIN",
		"versitygw":    "STRATA_TEST_VERSITYGW",
		"prometheus":   "STRATA_TEST_PROMETHEUS",
		"thanos-store": "STRATA_TEST_THANOS_STORE",
	} {
		if got := ToolEnv(name); got != want {
			t.Errorf("ToolEnv(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestToolMissingSkips(t *testing.T) {
	t.Setenv(RequireToolsEnv, "")
	t.Setenv("STRATA_TEST_NO_SUCH_TOOL", "/nonexistent/tool")
	skipped := false
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Tool(t, "no-such-tool")
	})
	if !skipped {
		t.Fatal("Tool with a missing binary did not skip")
	}
}

func TestProcessLifecycle(t *testing.T) {
	t.Setenv("STRATA_LEAK", "from-test") // must not reach the child
	p, addr := startHelper(t)
	pid := p.Pid()
	if pid == 0 || !alive(pid) {
		t.Fatalf("pid %d not running", pid)
	}

	// Graceful stop: the helper exits 0 on SIGTERM.
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(pid) {
		t.Fatalf("pid %d still alive after Stop", pid)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Fatal("still answering after Stop")
	}

	// Restart: same address, new process.
	p.Start()
	p.WaitHTTP("http://"+addr+"/", 10*time.Second)
	if p.Pid() == pid {
		t.Fatal("Start reused the old pid")
	}
	p.Restart()
	p.WaitHTTP("http://"+addr+"/", 10*time.Second)

	// Signal, then Wait for the exit it causes.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Signal after exit = %v, want ErrProcessDone", err)
	}

	// Kill: a crash, not a clean exit.
	p.Start()
	p.WaitHTTP("http://"+addr+"/", 10*time.Second)
	pid = p.Pid()
	var ee *exec.ExitError
	if err := p.Kill(); !errors.As(err, &ee) {
		t.Fatalf("Kill = %v, want an exit error", err)
	}
	if alive(pid) {
		t.Fatalf("pid %d alive after Kill", pid)
	}

	logs := p.Logs()
	if got := strings.Count(logs, "helper: listening"); got != 4 {
		t.Errorf("log has %d starts, want 4:\n%s", got, logs)
	}
	if strings.Contains(logs, "from-test") {
		t.Errorf("STRATA_* variable of the test leaked into the child:\n%s", logs)
	}
}

func TestProcessWaitHTTPFailsWhenProcessExits(t *testing.T) {
	// /bin/false exits at once; WaitHTTP must notice instead of waiting
	// out its timeout.
	ft := &fakeT{TB: t}
	p := &Process{t: ft, Proc: NewProc("false", "/bin/false", nil, nil, t.TempDir())}
	t.Cleanup(func() { p.Stop() })
	p.Start()
	start := time.Now()
	func() {
		defer func() { recover() }() // fakeT.Fatalf panics to stop WaitHTTP
		p.WaitHTTP("http://"+FreeAddr(t)+"/", time.Minute)
	}()
	if !strings.Contains(ft.msg, "exited") {
		t.Fatalf("WaitHTTP failure = %q, want it to say the process exited", ft.msg)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("WaitHTTP took %v", time.Since(start))
	}
}

// fakeT records Fatalf instead of failing the real test.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestS3(t *testing.T) {
	s := StartS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()

	put := func(key, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	get := func(key string) (string, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}
	if err := put("01ABC/chunks/000001", "chunk"); err != nil {
		t.Fatalf("put: %v", err)
	}

	// Outage: the same data comes back on the same port.
	s.Stop()
	shortCtx, shortCancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := c.GetObject(shortCtx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("01ABC/chunks/000001")})
	shortCancel()
	if err == nil {
		t.Fatal("GetObject succeeded while S3 was stopped")
	}
	s.Start()
	got, err := get("01ABC/chunks/000001")
	if err != nil || got != "chunk" {
		t.Fatalf("after restart: %q, %v", got, err)
	}

	for _, kv := range s.Env() {
		if !strings.HasPrefix(kv, "STRATA_S3_") {
			t.Errorf("Env entry %q is not a STRATA_S3_ variable", kv)
		}
	}
	if cfg := s.BucketConfig(); cfg.Validate() != nil || !cfg.S3.PathStyle || !cfg.S3.Insecure {
		t.Errorf("BucketConfig = %+v (%v)", cfg, cfg.Validate())
	}
	if !bytes.Contains([]byte(s.Process().Logs()), []byte("harness")) {
		t.Error("gateway log is empty")
	}
}
