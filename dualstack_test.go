package uxp

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDualStack: one server on the IPv6 wildcard address serves an IPv4
// client and an IPv6 client at once.
func TestDualStack(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 wildcard socket on this machine: %v", err)
	}
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		pc.Close()
		t.Skipf("::1 is unavailable on this machine: %v", err)
	}
	probe.Close()
	kp := testKeys(t)
	srv, err := NewServer(pc, echoServer{}, &Config{PrivateKey: kp.Private})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Close() })
	port := srv.Addr().(*net.UDPAddr).Port

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clients []*recordConn
	var conns []*Conn
	for _, host := range []string{"127.0.0.1", "::1"} {
		h := newRecordConn()
		cl, err := Dial(ctx, net.JoinHostPort(host, strconv.Itoa(port)), h, &Config{ServerPublicKey: kp.Public})
		if err != nil && host == "127.0.0.1" {
			t.Skipf("the IPv6 wildcard socket does not take IPv4 here (IPV6_V6ONLY): %v", err)
		}
		require.NoError(t, err, host)
		t.Cleanup(func() { cl.Close() })
		_, err = cl.Conn().Write([]byte("hello from " + host))
		require.NoError(t, err)
		clients = append(clients, h)
		conns = append(conns, cl.Conn())
	}
	require.Eventually(t, func() bool { return srv.Stats().Sessions == 2 }, 5*time.Second, 10*time.Millisecond)
	for i, h := range clients {
		require.Eventually(t, func() bool { _, msgs, _ := h.snapshot(); return len(msgs) == 1 }, 5*time.Second, 10*time.Millisecond, "client %d echo", i)
	}
	_, msgs, _ := clients[1].snapshot()
	require.Equal(t, "hello from ::1", string(msgs[0]))

	// The default packet size follows the peer's family: what a 1500-byte
	// Ethernet MTU carries, 1472 bytes over IPv4 (the server's socket sees
	// that client as an IPv4-mapped address, which counts as IPv4) and
	// 1452 over IPv6, on both sides.
	want := map[string]int{"127.0.0.1": defaultMTUIPv4, "::1": defaultMTUIPv6}
	require.Equal(t, defaultMTUIPv4, conns[0].MTU())
	require.Equal(t, defaultMTUIPv6, conns[1].MTU())
	seen := 0
	srv.RangeConns(func(c *Conn) bool {
		host := c.RemoteAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().String()
		require.Equal(t, want[host], c.MTU(), "server side of %s", host)
		seen++
		return true
	})
	require.Equal(t, 2, seen)
}
