package kcpx

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	kcp "github.com/xtaci/kcp-go/v5"
)

// modulePath is kcp-go's module path, as build info lists it.
const modulePath = "github.com/xtaci/kcp-go/v5"

// Audited lists the kcp-go versions whose internals this package was
// checked against: KCP and segment fields, ring growth, flush's signature
// and its keeping no bytes between calls, currentMs. On any other version
// the fast path is off (FastPath).
var Audited = []string{"v5.6.72", "v5.7.6"}

// Version is the kcp-go version of this build, "" when unknown (no module
// information, or a replaced kcp-go). Read once at init.
var Version = buildVersion()

func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if len(bi.Deps) == 0 && testing.Testing() {
		// go test binaries carry no dependency list: read the go.mod of
		// the module under test (tests run in their package's directory).
		return goModVersion()
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			if d.Replace != nil {
				return "" // a replacement is not the audited code
			}
			return d.Version
		}
	}
	return ""
}

// goModVersion is the kcp-go version the nearest go.mod above the working
// directory requires, "" when it has none or replaces it.
func goModVersion() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			v := ""
			for line := range strings.Lines(string(b)) {
				f := strings.Fields(line)
				switch {
				case slices.Contains(f, "=>") && slices.Contains(f, modulePath):
					return ""
				case len(f) >= 2 && f[0] == modulePath:
					v = f[1]
				case len(f) >= 3 && f[0] == "require" && f[1] == modulePath:
					v = f[2]
				}
			}
			return v
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// check reports why the fast path cannot run with allow as the audited
// list, or nil when it can.
func check(allow []string) error {
	switch {
	case Version == "":
		return fmt.Errorf("kcp-go version unknown (no build info)")
	case !slices.Contains(allow, Version):
		return fmt.Errorf("kcp-go %s not audited (audited: %v)", Version, allow)
	case kcpMemErr != nil:
		return kcpMemErr
	case kcpCloneErr != nil:
		return kcpCloneErr
	case kcpSchedErr != nil:
		return kcpSchedErr
	}
	return nil
}

// gateErr is check(Audited), computed once at init.
var gateErr = check(Audited)

// clock is a KCP that is never updated: its Check answers kcp-go's
// millisecond clock through the public API. Only read after init.
var clock = kcp.NewKCP(0, func([]byte, int) {})

// Now is kcp-go's millisecond clock, the one KCP.Check answers in, read
// from the real clock. The reliability layer does not read it: it takes
// Ms(now) of the time its event began, and compares Check's answers
// through CheckDue, which reads this clock.
func Now() uint32 {
	if gateErr == nil {
		return linkedNow()
	}
	return clock.Check() // a KCP never updated answers currentMs
}

// refTime is the reference point of kcp-go's millisecond clock: kcp-go's
// own on the fast path; on the fallback path the time whose distance to
// the first reading of Now is that reading, within a millisecond.
var refTime = func() time.Time {
	if gateErr == nil {
		return linkedRefTime
	}
	now := time.Now()
	return now.Add(-time.Duration(clock.Check()) * time.Millisecond)
}()

// Ms converts now to kcp-go's millisecond clock: the one conversion from
// time.Time to KCP milliseconds in uxp. It computes what kcp-go's
// currentMs (time.Since(refTime) in milliseconds) answers at the instant
// now, the same formula on the same reference, so the timestamps the
// reliability layer forges agree with those KCP stamps itself, and
// Ms(now) == Now() whenever now is the current time.
//
// Under testing/synctest the bubble's clock starts at 2000-01-01 without
// a monotonic reading while refTime is the real process start, so the
// difference is taken between wall clocks, as kcp-go's is: it is huge and
// negative, and wraps mod 2^32 the same way on both sides. Where the
// bubble's millisecond boundaries fall relative to KCP's depends on
// refTime's sub-millisecond phase, which changes from run to run: code
// that compares KCP milliseconds must only ever compare values of this
// one clock (never a duration rounded to milliseconds against a
// time.Time), and convert back with an upper bound of a millisecond.
func Ms(now time.Time) uint32 { return uint32(now.Sub(refTime) / time.Millisecond) }
