package uxp

import (
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uxp-go/uxp/internal/testutil"
)

// misspelled has OnNewDatagramComming: it compiles, and is never called.
type misspelled struct{ NopHandler }

func (misspelled) OnNewDatagramComming(*Conn, []byte) {}

// TestUnhandledCounted: datagrams for a handler without DatagramHandler,
// and lane messages for one without LaneHandler, are counted on the
// session and the server, with one warning per session.
func TestUnhandledCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log testutil.SyncBuffer
		cfg := &Config{Lanes: []LaneConfig{{}, {}}}
		srvCfg := cfg.Clone()
		srvCfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
		col := &connCollector{newConn: func(*Conn) ConnHandler { return misspelled{} }}
		n := newSimServer(t, 11, col, srvCfg, cfg)
		c := n.dial(t, 0, nil).Conn()
		for range 3 {
			require.NoError(t, c.WriteDatagram([]byte("d")))
			_, err := c.WriteLane(1, []byte("l1"))
			require.NoError(t, err)
			_, err = c.WriteLane(0, []byte("l0")) // lane 0 is what OnNewDataComing is for
			require.NoError(t, err)
		}
		time.Sleep(time.Second)
		sc := col.list()[0]
		want := UnhandledStats{Datagrams: 3, LaneMessages: 3}
		require.Equal(t, want, sc.Stats().Unhandled)
		require.Equal(t, want, n.srv.Stats().Unhandled)
		out := log.String()
		require.Equal(t, 1, strings.Count(out, "does not implement"), "one warning per session: %s", out)
		require.Contains(t, out, "uxp.misspelled")

		// The client's NopHandler (no handler given) counts, silently.
		require.NoError(t, sc.WriteDatagram([]byte("d")))
		time.Sleep(100 * time.Millisecond)
		require.EqualValues(t, 1, c.Unhandled().Datagrams)
	})
}
