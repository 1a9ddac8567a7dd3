package uxp

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/uxp-go/uxp/internal/testutil"
)

// TestPathMTUKernel runs a session with the default packet size over a
// real loopback whose MTU is 1280 (a network namespace; needs root), over
// IPv4 and IPv6. The kernel must not fragment uxp's datagrams: path MTU
// discovery's probes larger than the interface are refused (EMSGSIZE,
// counted in SendsTooBig) instead of passing as fragments, so both sides
// settle at exactly what the interface carries (1280 less the IP and UDP
// headers: 1252 bytes over IPv4, 1232 over IPv6), a large message echoes
// back whole, and the namespace's IP counters show no fragment created or
// reassembled.
func TestPathMTUKernel(t *testing.T) {
	const loMTU = 1280
	for _, tt := range []struct {
		name, network, host string
		max, want           int // the default maximum; the size the path carries
	}{
		{"ipv4", "udp4", "127.0.0.1", defaultMTUIPv4, loMTU - 20 - 8},
		{"ipv6", "udp6", "::1", defaultMTUIPv6, loMTU - 40 - 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := testutil.NewNetNS(t, loMTU)
			var spc, cpc *net.UDPConn
			var err error
			ns.Do(func() {
				addr := &net.UDPAddr{IP: net.ParseIP(tt.host)}
				if spc, err = net.ListenUDP(tt.network, addr); err != nil {
					return
				}
				cpc, err = net.ListenUDP(tt.network, addr)
			})
			if err != nil {
				t.Skipf("no %s loopback in the namespace: %v", tt.network, err)
			}
			t.Cleanup(func() { spc.Close(); cpc.Close() })
			before := ns.SNMP(t)

			kp := testKeys(t)
			srv, err := NewServer(spc, echoServer{}, &Config{PrivateKey: kp.Private})
			require.NoError(t, err)
			require.NoError(t, srv.Start())
			t.Cleanup(func() { srv.Close() })
			rec := newRecordConn()
			cli, err := NewClient(cpc, spc.LocalAddr(), rec, &Config{ServerPublicKey: kp.Public})
			require.NoError(t, err)
			t.Cleanup(func() { cli.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, cli.Start(ctx))
			c := cli.Conn()
			require.Equal(t, tt.max, c.MTU(), "the default maximum for the family")

			// The search: the maximum, then a binary search; each size
			// that fails costs three probe timeouts (100 ms each on
			// loopback).
			var sc *Conn
			require.Eventually(t, func() bool {
				srv.RangeConns(func(s *Conn) bool { sc = s; return false })
				return c.PathMTU() == tt.want && sc != nil && sc.PathMTU() == tt.want
			}, 30*time.Second, 20*time.Millisecond, "both sides settle at %d", tt.want)
			require.NotZero(t, c.Stats().SendsTooBig, "probes larger than the interface were refused, not fragmented")

			msg := bytes.Repeat([]byte("0123456789abcdef"), 4000) // 64,000 bytes: full-size packets
			_, err = c.Write(msg)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				_, msgs, _ := rec.snapshot()
				return len(msgs) == 1
			}, 10*time.Second, 10*time.Millisecond, "the echo")
			_, msgs, _ := rec.snapshot()
			require.Equal(t, msg, msgs[0])
			require.Equal(t, tt.want, c.PathMTU(), "full-size packets pass")
			require.Nil(t, c.Err())

			after := ns.SNMP(t)
			for _, k := range []string{"Ip.FragCreates", "Ip.ReasmReqds", "Ip6FragCreates", "Ip6ReasmReqds"} {
				require.Equal(t, before[k], after[k], "%s: nothing fragmented", k)
			}
		})
	}
}
