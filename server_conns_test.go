package uxp

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

func TestRangeConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSimPair(t, 4, nil, nil, true)
		waitFor(t, func() bool { c, _, _ := p.srvH.counts(); return c == 1 })
		var got []*Conn
		p.srv.RangeConns(func(c *Conn) bool { got = append(got, c); return true })
		require.Len(t, got, 1)
		require.Equal(t, p.cli.Conn().ID(), got[0].ID())
		calls := 0
		p.srv.RangeConns(func(c *Conn) bool { calls++; return false })
		require.Equal(t, 1, calls)

		require.NoError(t, p.cli.Close())
		waitFor(t, func() bool { _, cc, _ := p.srvH.counts(); return cc == 1 })
		calls = 0
		p.srv.RangeConns(func(*Conn) bool { calls++; return true })
		require.Zero(t, calls, "a closed session is no longer listed")
	})
}
