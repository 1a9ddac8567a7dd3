package sockio

import (
	"net"

	"golang.org/x/sys/unix"
)

// noFragment makes the kernel send u's datagrams with the IPv4 DF bit set
// and never fragment them, IPv4 or IPv6:
//
//   - IP_MTU_DISCOVER = IP_PMTUDISC_PROBE: DF set, and the limit is the
//     interface's MTU, not the path MTU the kernel learned from ICMP. A
//     larger datagram fails its send with EMSGSIZE; one that fits the
//     interface but not the path is dropped on the way. That is what
//     DPLPMTUD (RFC 8899) needs: its probes are lost, and their loss is
//     the answer, while the kernel's own PMTU cache (spoofable with
//     ICMP, RFC 8899 section 4.6) does not shrink the size.
//   - IPV6_MTU_DISCOVER = IPV6_PMTUDISC_PROBE and IPV6_DONTFRAG: the same
//     for IPv6, where only the sender may fragment.
//
// A dual-stack socket (AF_INET6) sends to IPv4-mapped peers on the IPv4
// path, which follows IP_MTU_DISCOVER: both are set on it (an IPv6-only
// socket refuses the IPv4 option, which is then moot).
func noFragment(u *net.UDPConn) error {
	rc, err := u.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		f := int(fd)
		domain, err := unix.GetsockoptInt(f, unix.SOL_SOCKET, unix.SO_DOMAIN)
		if err != nil {
			serr = err
			return
		}
		err4 := unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		if domain != unix.AF_INET6 {
			serr = err4
			return
		}
		if err := unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE); err != nil {
			serr = err
			return
		}
		serr = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
	})
	if cerr != nil {
		return cerr
	}
	return serr
}
