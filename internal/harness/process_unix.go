//go:build unix

// Process groups, so that stopping a process stops what it started too.

package harness

import "syscall"

func sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	setPdeathsig(attr)
	return attr
}

// killGroup kills the process group led by pid; it may be gone already.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
