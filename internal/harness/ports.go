package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// A port is found by listening on port 0 and closing, and the kernel
// hands a just-closed port out again: listening on port 0 3000 times gave
// an already-seen port hundreds of times. Two processes of one test were
// so given the same port, and go test runs the test binaries of several
// packages at once, which could be given the same port too. So a port is
// handed out once: in this process (handedOut), and among every process
// on the machine that uses this package, by an exclusive lock on a file
// named after it (portLockDir), held until this process exits. The kernel
// drops the locks of a process that dies, so a killed test leaves no port
// taken. Another program may still take a port before the caller binds
// it; that is rare enough on a test machine to accept.

var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
	// portLocks keeps the locked files open: closing one drops its lock.
	portLocks []*os.File
)

// portLockDir is where the port lock files are, beside every other test
// process's; "" if it cannot be made.
var portLockDir = sync.OnceValue(func() string {
	dir := filepath.Join(os.TempDir(), "strata-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return ""
	}
	return dir
})

// claim records the ports port to port+n-1 as handed out, unless one of
// them was already, in this process or another.
func claim(port, n int) bool {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for p := port; p < port+n; p++ {
		if handedOut[p] {
			return false
		}
	}
	var locked []*os.File
	for p := port; p < port+n; p++ {
		f, ok := lockPort(p)
		if !ok {
			for _, f := range locked {
				f.Close()
			}
			return false
		}
		if f != nil {
			locked = append(locked, f)
		}
	}
	portLocks = append(portLocks, locked...)
	for p := port; p < port+n; p++ {
		handedOut[p] = true
	}
	return true
}

// lockPort takes the lock of port. It reports false if another process
// holds it; where no lock file can be made, it takes none (nil) and
// leaves the claim to this process's own record.
func lockPort(port int) (*os.File, bool) {
	dir := portLockDir()
	if dir == "" {
		return nil, true
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err != syscall.EWOULDBLOCK
	}
	return f, true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// is handed out to no other caller, in this process or another (see
// above).
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FreePorts returns "127.0.0.1:p" such that the ports p to p+n-1 were all
// free a moment ago and are handed out to no other caller (see FreePort),
// for a process that listens on a run of ports (strata dev puts its block
// builders on the ports after the router's).
func FreePorts(n int) (string, error) {
	port, err := freePorts(n)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// freePorts returns the first of n free ports in a row, claimed.
func freePorts(n int) (int, error) {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		for i := 1; i < n; i++ {
			li, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i)))
			if err != nil {
				break
			}
			ls = append(ls, li)
		}
		free := len(ls) == n
		for _, l := range ls {
			l.Close()
		}
		if free && claim(port, n) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no run of %d free ports found", n)
}

// FreeAddrs is FreePorts for a test.
func FreeAddrs(t testing.TB, n int) string {
	t.Helper()
	addr, err := FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// FreeAddr returns "127.0.0.1:<FreePort>".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)
}
