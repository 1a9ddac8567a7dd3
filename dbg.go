package uxp

import (
	"fmt"
	"os"
	"time"
)

var debugLanes = os.Getenv("UXPDBG") != ""

func dbg(format string, args ...any) {
	if debugLanes {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("05.000")}, args...)...)
	}
}
