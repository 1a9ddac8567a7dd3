//go:build linux

package uxp

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDialRefused: Dial and DialConn to a local port where nothing listens
// fail within a second (the handshake timeout is 5 s) with an error
// matching syscall.ECONNREFUSED: their socket is connected, so the ICMP
// port unreachable reaches it.
func TestDialRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close()) // now nothing listens there
	cfg := &Config{ServerPublicKey: testKeys(t).Public}
	dials := []struct {
		name string
		dial func(ctx context.Context) error
	}{
		{"DialConn", func(ctx context.Context) error {
			c, err := DialConn(ctx, addr, cfg)
			if err == nil {
				c.Close()
			}
			return err
		}},
		{"Dial", func(ctx context.Context) error {
			c, err := Dial(ctx, addr, nil, cfg)
			if err == nil {
				c.Close()
			}
			return err
		}},
	}
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := d.dial(ctx)
			took := time.Since(start)
			t.Logf("failed after %v: %v", took, err)
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
			require.Less(t, took, time.Second)
		})
	}
}
