//go:build !linux

package sockio

import "net"

// noFragment does nothing off Linux: the kernel's default applies (most
// set DF on IPv4 only when asked, and may fragment a datagram larger than
// the interface). Path MTU discovery still works where the path drops
// large datagrams, but a probe the sender's kernel fragments passes.
func noFragment(*net.UDPConn) error { return nil }
