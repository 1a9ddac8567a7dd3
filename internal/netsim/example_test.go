package netsim_test

import (
	"fmt"
	"time"

	"github.com/uxp-go/uxp/internal/netsim"
)

// In tests, create the Network inside a synctest.Test bubble so that delays
// take no real time; this example has no delay and needs no bubble.
func ExampleNetwork() {
	n := netsim.NewNetwork(1)
	defer n.Close()
	a, err := n.Listen("10.0.0.1:4000")
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := n.Listen("10.0.0.2:4000")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Lose every packet that starts with 'x' on the link a -> b.
	n.SetLink(a.LocalAddr(), b.LocalAddr(), netsim.Impairment{
		Drop: func(p []byte) bool { return len(p) > 0 && p[0] == 'x' },
	})
	for _, msg := range []string{"hello", "xdropped", "world"} {
		if _, err := a.WriteTo([]byte(msg), b.LocalAddr()); err != nil {
			fmt.Println(err)
			return
		}
	}
	buf := make([]byte, 64)
	for {
		if err := b.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			fmt.Println(err)
			return
		}
		nr, from, err := b.ReadFrom(buf)
		if err != nil {
			break // the deadline: nothing more is coming
		}
		fmt.Printf("%s from %v\n", buf[:nr], from)
	}
	fmt.Printf("%+v\n", n.Stats())
	// Output:
	// hello from 10.0.0.1:4000
	// world from 10.0.0.1:4000
	// {Sent:3 Delivered:2 Dropped:1 Duplicated:0 Reordered:0}
}
