// Command pause is the end-to-end test's pod sandbox image: the process that
// holds a pod's namespaces open. It does nothing but wait for the signal that
// ends it, and reaps children (as PID 1 of a pod it inherits orphans).
//
// It is built static (CGO_ENABLED=0) so the image needs nothing beside it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every child that has ended; WNOHANG returns 0 when none has.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
