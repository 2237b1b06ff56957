//go:build unix && !linux

package harness

import "syscall"

func setPdeathsig(*syscall.SysProcAttr) {}
