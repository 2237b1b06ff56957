package loadgen

import (
	"fmt"
	"math"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// ProcessCPU reads the CPU time (user plus system) pid has used so far,
// from /proc/PID/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	s, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	return time.Duration(math.Round(s.CPUTime() * float64(time.Second))), nil
}

// ProcessMemory reads the peak resident set size (VmHWM) and the current
// one (VmRSS) of pid, in bytes, from /proc/PID/status.
func ProcessMemory(pid int) (peak, current int64, err error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	s, err := p.NewStatus()
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	peak, current = int64(s.VmHWM), int64(s.VmRSS)
	if peak == 0 {
		peak = current
	}
	return peak, current, nil
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
