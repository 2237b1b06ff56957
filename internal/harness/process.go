// Processes started for a test, stopped and logged when it ends.

package harness

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// logTail is how much of a process log is printed when a test fails.
const logTail = 64 << 10

// Process is a running (or stopped) binary owned by a test. Its stdout and
// stderr go to a log file in a temporary directory, which is also its
// working directory, so relative paths (./data) stay out of the source
// tree. The process is stopped when the test ends, and its log printed if
// the test failed. Methods that can fail call t.Fatalf: call them from the
// test's goroutine.
type Process struct {
	t    testing.TB
	name string
	path string
	args []string
	env  []string
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, once done
	// reaped is set once stop has killed the run's process group.
	reaped bool
}

// StartProcess starts path with args. The process gets the test's
// environment without any STRATA_* variable (so a developer's own settings
// cannot leak in), plus env ("K=V" entries).
func StartProcess(t testing.TB, path string, args []string, env []string) *Process {
	t.Helper()
	p := &Process{
		t:    t,
		name: filepath.Base(path),
		path: path,
		args: args,
		env:  env,
		dir:  t.TempDir(),
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.dumpLog()
		}
	})
	p.Start()
	return p
}

// LogPath is the file that collects the process's stdout and stderr, over
// all its starts.
func (p *Process) LogPath() string { return filepath.Join(p.dir, p.name+".log") }

// Logs returns the log file's content.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return string(b)
}

// Start starts the process again after Stop or Kill, with the same
// arguments and environment. It fails the test if it is running.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isDone(p.done) {
		p.t.Fatalf("%s: Start while running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logFile, err := os.OpenFile(p.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("%s: open log: %v", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = append(environWithout("STRATA_"), p.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(logFile, "--- harness %s: start %s %s\n", time.Now().Format(time.TimeOnly), p.path, strings.Join(p.args, " "))
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.t.Fatalf("%s: start: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.reaped = cmd, done, nil, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logFile, "--- harness %s: exited: %v\n", time.Now().Format(time.TimeOnly), exitStatus(err))
		logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
}

// Pid is the process ID of the current (or last) run.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the process. It returns os.ErrProcessDone if the
// process has exited.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isDone(done) {
		return os.ErrProcessDone
	}
	return cmd.Process.Signal(sig)
}

// Wait waits for the process to exit and returns how it exited (nil for
// status 0, an *exec.ExitError otherwise). It fails the test after timeout.
func (p *Process) Wait(timeout time.Duration) error {
	p.t.Helper()
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		p.t.Fatalf("%s: Wait before Start", p.name)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		p.t.Fatalf("%s: still running after %v", p.name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop stops the process gracefully: SIGTERM, then SIGKILL if it is still
// running after StopTimeout. It returns how the process exited (see Wait);
// stopping a stopped process returns the same.
func (p *Process) Stop() error {
	return p.stop(syscall.SIGTERM, StopTimeout)
}

// StopWithin is Stop with a grace period of its own, for processes whose
// clean exit takes long (a block builder flushing and uploading).
func (p *Process) StopWithin(grace time.Duration) error {
	return p.stop(syscall.SIGTERM, grace)
}

// Kill kills the process (SIGKILL) and waits for it, as a crash would end
// it.
func (p *Process) Kill() error {
	return p.stop(syscall.SIGKILL, 0)
}

// Restart stops the process gracefully and starts it again with the same
// arguments and environment.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

func (p *Process) stop(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if !isDone(done) {
		_ = cmd.Process.Signal(sig)
		if grace > 0 {
			select {
			case <-done:
			case <-time.After(grace):
				p.t.Logf("%s: no exit %v after %v, killing it", p.name, sig, grace)
			}
		}
	}
	p.mu.Lock()
	reaped := p.reaped
	p.reaped = true
	p.mu.Unlock()
	if !reaped {
		// Anything the process started itself goes too (its process
		// group), once per run: later the group ID could be reused.
		killGroup(cmd.Process.Pid)
	}
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// WaitHTTP polls url until it answers 2xx, failing the test if the process
// exits first or timeout passes.
func (p *Process) WaitHTTP(url string, timeout time.Duration) {
	p.t.Helper()
	if err := p.waitAnswer(url, timeout, func(code int) bool { return code >= 200 && code < 300 }); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// waitAnswer polls url until ok accepts the status code.
func (p *Process) waitAnswer(url string, timeout time.Duration, ok func(code int) bool) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode) {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if isDone(done) {
			return fmt.Errorf("exited (%v) before %s answered; last: %s", exitStatus(p.exitErr()), url, last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v; last: %s", url, timeout, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// dumpLog prints the end of the log.
func (p *Process) dumpLog() {
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		p.t.Logf("%s: read log: %v", p.name, err)
		return
	}
	head := ""
	if len(b) > logTail {
		head = fmt.Sprintf("(first %d bytes cut; full log in %s)\n", len(b)-logTail, p.LogPath())
		b = b[len(b)-logTail:]
	}
	p.t.Logf("%s log:\n%s%s", p.name, head, b)
}

func isDone(done chan struct{}) bool {
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return err.Error()
}

// environWithout is os.Environ() minus variables starting with prefix.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}
