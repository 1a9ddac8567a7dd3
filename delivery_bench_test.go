package uxp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkDeliveryModes measures what one message costs both shards, end
// to end without a network: the write, the sender's pump (lanes, skip
// marker bookkeeping, sealing), the receiver's input and delivery, and the
// ACK back. Plain Write on a one-lane session is the baseline the other
// modes are compared with (same run).
func BenchmarkDeliveryModes(b *testing.B) {
	twoLanes := []LaneConfig{{Priority: 1}, {}}
	modes := []struct {
		name  string
		cfg   *Config
		write func(c *Conn, msg []byte) error
	}{
		{"Write", &Config{}, func(c *Conn, msg []byte) error { _, err := c.Write(msg); return err }},
		{"WriteLane1of2", &Config{Lanes: twoLanes}, func(c *Conn, msg []byte) error { _, err := c.WriteLane(1, msg); return err }},
		{"WriteWithDeadline", &Config{}, func(c *Conn, msg []byte) error {
			_, err := c.WriteWithDeadline(msg, time.Second)
			return err
		}},
		{"WriteDatagram", &Config{}, func(c *Conn, msg []byte) error { return c.WriteDatagram(msg) }},
		{"WriteDatagramLatest", &Config{}, func(c *Conn, msg []byte) error { return c.WriteDatagramLatest(1, msg) }},
	}
	for _, size := range []int{64, 1024} {
		for _, m := range modes {
			b.Run(m.name+"/"+itoa(size), func(b *testing.B) {
				p := newFramePairConfig(b, m.cfg)
				p.srv.SetHandler(NopHandler{})
				now := time.Now()
				msg := make([]byte, size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					require.NoError(b, m.write(p.cli, msg))
					p.cli.pump(now)
					feed(p.srv, p.cliOut.take(), p.cliAP, now)
					p.srv.pump(now)
					feed(p.cli, p.srvOut.take(), p.srvAP, now)
				}
			})
		}
	}
}
