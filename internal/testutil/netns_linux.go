package testutil

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// NetNS is a fresh network namespace whose only interface, the loopback,
// is up at a chosen MTU (127.0.0.1 and ::1), for tests of what happens to
// datagrams larger than the interface. One OS thread lives in it: Do runs
// code there, so that sockets opened in that code belong to the
// namespace (and stay in it whichever thread uses them later). The thread
// is discarded at the end of the test, never returned to Go's pool.
type NetNS struct {
	calls chan func()
	done  chan struct{}
}

// NewNetNS makes the namespace, or skips t when it cannot (it needs
// CAP_SYS_ADMIN: root).
func NewNetNS(t testing.TB, loMTU int) *NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace (unshare CLONE_NEWNET)")
	}
	n := &NetNS{calls: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine exits locked, and Go ends the
		// thread with it instead of reusing it outside the namespace.
		runtime.LockOSThread()
		defer close(n.done)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare: %w", err)
			return
		}
		ready <- loopbackUp(loMTU)
		for f := range n.calls {
			f()
		}
	}()
	if err := <-ready; err != nil {
		<-n.done
		t.Skipf("no network namespace: %v", err)
	}
	t.Cleanup(func() {
		close(n.calls)
		<-n.done
	})
	return n
}

// loopbackUp sets the loopback's MTU and brings it up.
func loopbackUp(mtu int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(mtu))
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("SIOCSIFMTU: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// Do runs f on the namespace's thread and returns when it has.
func (n *NetNS) Do(f func()) {
	done := make(chan struct{})
	n.calls <- func() {
		defer close(done)
		f()
	}
	<-done
}

// SNMP returns the namespace's IP counters: the Ip lines of
// /proc/net/snmp (keys as "Ip.FragCreates") and /proc/net/snmp6 (keys as
// "Ip6FragCreates").
func (n *NetNS) SNMP(t testing.TB) map[string]int64 {
	t.Helper()
	m := make(map[string]int64)
	var err error
	n.Do(func() {
		// /proc/thread-self: /proc/net is the process's namespace.
		if err = readSNMP("/proc/thread-self/net/snmp", m); err == nil {
			err = readSNMP6("/proc/thread-self/net/snmp6", m)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readSNMP reads the "Ip:" header and value lines of an snmp file.
func readSNMP(path string, m map[string]int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var keys []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "Ip:" {
			continue
		}
		if keys == nil {
			keys = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(keys) {
				m["Ip."+keys[i]], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return nil
}

// readSNMP6 reads the "Ip6..." lines of an snmp6 file (a missing file,
// IPv6 off, leaves them out).
func readSNMP6(path string, m map[string]int64) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 2 && strings.HasPrefix(fs[0], "Ip6") {
			m[fs[0]], _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return sc.Err()
}
