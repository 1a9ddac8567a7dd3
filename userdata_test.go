package uxp

import (
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// TestUserDataAndServerConn: user data is per session and safe to set
// from many goroutines; Server.Conn finds live announced sessions by ID
// and forgets them once they end.
func TestUserDataAndServerConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		col := &connCollector{newConn: func(c *Conn) ConnHandler {
			c.SetUserData(c.RemoteAddr().String())
			return nil
		}}
		n := newSimServer(t, 1, col, nil, nil)
		cl1 := n.dial(t, 0, nil)
		cl2 := n.dial(t, 1, nil)
		waitFor(t, func() bool { return len(col.list()) == 2 })
		conns := col.list()

		for _, c := range conns {
			require.NotNil(t, c.UserData(), "set in OnNewConnComing")
			require.Same(t, c, n.srv.Conn(c.ID()))
		}
		require.Nil(t, cl1.Conn().UserData(), "unset user data is nil")
		require.Nil(t, n.srv.Conn(0))
		require.Nil(t, n.srv.Conn(conns[0].ID()^conns[1].ID()^1), "an unknown ID")

		type player struct{ name string }
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 100 {
					conns[0].SetUserData(&player{name: string(rune('a' + i))})
					_ = conns[0].UserData().(*player).name
				}
			})
		}
		wg.Wait()
		require.IsType(t, &player{}, conns[0].UserData())
		require.NotEqual(t, conns[0].UserData(), conns[1].UserData(), "user data is per session")

		id := cl2.Conn().ID()
		require.NoError(t, cl2.Close())
		waitFor(t, func() bool { return n.srv.Conn(id) == nil })
		require.NotNil(t, conns[1].UserData(), "readable after the session ended")
		require.NotNil(t, n.srv.Conn(cl1.Conn().ID()))
	})
}
