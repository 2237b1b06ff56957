package harness

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// TestFreePortsAreNotHandedOutTwice: the kernel hands out a closed port
// again (listening on port 0 3000 times and closing gave a port already
// seen hundreds of times), so two processes of one test could be given
// the same port; FreePort and FreePorts never return a port twice.
func TestFreePortsAreNotHandedOutTwice(t *testing.T) {
	seen := map[int]bool{}
	take := func(port int) {
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
	for i := range 1000 {
		if i%100 == 0 {
			for _, port := range portsOf(t, FreeAddrs(t, 3), 3) {
				take(port)
			}
			continue
		}
		take(FreePort(t))
	}
}

// portHolderEnv makes the test binary a process that takes that many
// ports with FreePorts, prints them, and holds them until its stdin closes.
const portHolderEnv = "HARNESS_TEST_HOLD_PORTS"

func holdPorts(n string) int {
	count, err := strconv.Atoi(n)
	if err != nil {
		return 2
	}
	for range count {
		p, err := FreePorts(1)
		if err != nil {
			return 3
		}
		os.Stdout.WriteString(p + "\n")
	}
	os.Stdout.WriteString("held\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// TestFreePortsAreNotHandedOutTwiceAcrossProcesses: go test runs the test
// binaries of several packages at once, and each listening on port 0
// could be given a port another had just closed: a port another process
// took is never handed out while that process lives.
func TestFreePortsAreNotHandedOutTwiceAcrossProcesses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const held = 300
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), portHolderEnv+"="+strconv.Itoa(held))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("port holder: %v", err)
		}
	})
	theirs := map[int]bool{}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && lines.Text() != "held" {
		for _, p := range portsOf(t, lines.Text(), 1) {
			theirs[p] = true
		}
	}
	if len(theirs) != held {
		t.Fatalf("the port holder printed %d ports, want %d", len(theirs), held)
	}
	for range 1000 {
		if p := FreePort(t); theirs[p] {
			t.Fatalf("port %d handed out here while another process holds it", p)
		}
	}
}

// portsOf returns the n ports from that of addr on.
func portsOf(t *testing.T, addr string, n int) []int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, n)
	for k := range out {
		out[k] = port + k
	}
	return out
}
