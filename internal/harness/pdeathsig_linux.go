// On Linux, children die with the test binary even when it is killed
// before its cleanups run (go test -timeout).

package harness

import "syscall"

func setPdeathsig(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
