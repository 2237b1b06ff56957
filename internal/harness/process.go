// Processes started for a test, stopped and logged when it ends (Process),
// or for a program that is not a test, such as the benchmark runner (Proc).

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

// Proc is a running (or stopped) binary, logged to a file in its
// directory, in a process group of its own so that stopping it stops what
// it started too. Process is Proc for a test; Proc is for programs that
// are not tests (strata-bench), and its methods return errors instead of
// failing a test.
type Proc struct {
	name string
	path string
	args []string
	env  []string
	dir  string
	// Logf, if set, is told when a process ignores its stop signal.
	Logf func(format string, args ...any)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, once done
	// reaped is set once stop has killed the run's process group.
	reaped bool
}

// NewProc prepares path with args, to run in dir (its working directory,
// which holds its log, name.log) with the environment of this process
// without any STRATA_* variable (so a developer's own settings cannot leak
// in), plus env ("K=V" entries). Start starts it.
func NewProc(name, path string, args, env []string, dir string) *Proc {
	return &Proc{name: name, path: path, args: args, env: env, dir: dir}
}

// Name is the name NewProc was given.
func (p *Proc) Name() string { return p.name }

// LogPath is the file that collects the process's stdout and stderr, over
// all its starts.
func (p *Proc) LogPath() string { return filepath.Join(p.dir, p.name+".log") }

// Logs returns the log file's content.
func (p *Proc) Logs() string {
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return string(b)
}

// Tail is the last n bytes of the log, trimmed.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.LogPath())
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Start starts the process, again after Stop or Kill, with the same
// arguments and environment. It is an error if it is running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isDone(p.done) {
		return fmt.Errorf("%s: Start while running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logFile, err := os.OpenFile(p.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
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
		return fmt.Errorf("%s: start %s: %w", p.name, p.path, err)
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
	return nil
}

// Pid is the process ID of the current (or last) run.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the process. It returns os.ErrProcessDone if the
// process has exited.
func (p *Proc) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isDone(done) {
		return os.ErrProcessDone
	}
	return cmd.Process.Signal(sig)
}

// Exited tells whether the current run has ended, and how (nil for
// status 0, an *exec.ExitError otherwise).
func (p *Proc) Exited() (exit error, exited bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !isDone(p.done) {
		return nil, false
	}
	return p.err, true
}

// Wait waits up to timeout for the process to exit and returns how it
// exited (see Exited); err says why it could not wait.
func (p *Proc) Wait(timeout time.Duration) (exit, err error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil, fmt.Errorf("%s: Wait before Start", p.name)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s: still running after %v", p.name, timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err, nil
}

// Stop sends sig and waits up to grace for the process to exit, then
// kills it and what it started (its process group), and returns how it
// exited (see Exited); stopping a stopped process returns the same.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
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
				if p.Logf != nil {
					p.Logf("%s: no exit %v after %v, killing it", p.name, sig, grace)
				}
			}
		}
	}
	p.mu.Lock()
	reaped := p.reaped
	p.reaped = true
	p.mu.Unlock()
	if !reaped {
		// Once per run: later the group ID could be reused.
		killGroup(cmd.Process.Pid)
	}
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// WaitAnswer polls url until ok accepts its status code; it is an error if
// the process exits first or timeout passes.
func (p *Proc) WaitAnswer(url string, timeout time.Duration, ok func(code int) bool) error {
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
			exit, _ := p.Exited()
			return fmt.Errorf("exited (%v) before %s answered; last: %s", exitStatus(exit), url, last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v; last: %s", url, timeout, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Process is a running (or stopped) binary owned by a test: a Proc in a
// temporary directory, stopped when the test ends, and its log printed if
// the test failed. Methods that can fail call t.Fatalf: call them from the
// test's goroutine.
type Process struct {
	t testing.TB
	*Proc
}

// StartProcess starts path with args (see NewProc for its environment).
func StartProcess(t testing.TB, path string, args []string, env []string) *Process {
	t.Helper()
	p := &Process{t: t, Proc: NewProc(filepath.Base(path), path, args, env, t.TempDir())}
	p.Proc.Logf = t.Logf
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			p.dumpLog()
		}
	})
	p.Start()
	return p
}

// Start starts the process again after Stop or Kill, with the same
// arguments and environment. It fails the test if it is running.
func (p *Process) Start() {
	p.t.Helper()
	if err := p.Proc.Start(); err != nil {
		p.t.Fatal(err)
	}
}

// Wait waits for the process to exit and returns how it exited (nil for
// status 0, an *exec.ExitError otherwise). It fails the test after timeout.
func (p *Process) Wait(timeout time.Duration) error {
	p.t.Helper()
	exit, err := p.Proc.Wait(timeout)
	if err != nil {
		p.t.Fatal(err)
	}
	return exit
}

// Stop stops the process gracefully: SIGTERM, then SIGKILL if it is still
// running after StopTimeout. It returns how the process exited (see Wait);
// stopping a stopped process returns the same.
func (p *Process) Stop() error {
	return p.Proc.Stop(syscall.SIGTERM, StopTimeout)
}

// StopWithin is Stop with a grace period of its own, for processes whose
// clean exit takes long (a block builder flushing and uploading).
func (p *Process) StopWithin(grace time.Duration) error {
	return p.Proc.Stop(syscall.SIGTERM, grace)
}

// Kill kills the process (SIGKILL) and waits for it, as a crash would end
// it.
func (p *Process) Kill() error {
	return p.Proc.Stop(syscall.SIGKILL, 0)
}

// Restart stops the process gracefully and starts it again with the same
// arguments and environment.
func (p *Process) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

// WaitHTTP polls url until it answers 2xx, failing the test if the process
// exits first or timeout passes.
func (p *Process) WaitHTTP(url string, timeout time.Duration) {
	p.t.Helper()
	if err := p.WaitAnswer(url, timeout, func(code int) bool { return code >= 200 && code < 300 }); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
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
