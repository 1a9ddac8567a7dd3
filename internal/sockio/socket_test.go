package sockio

import (
	"net"
	"net/netip"
	"testing"
)

type fakeAddr string

func (a fakeAddr) Network() string { return "fake" }
func (a fakeAddr) String() string  { return string(a) }

// TestAddrPort converts UDP and other addresses, unmapping IPv4-mapped
// ones; what it cannot parse becomes the zero AddrPort.
func TestAddrPort(t *testing.T) {
	for _, tt := range []struct {
		a    net.Addr
		want string
	}{
		{&net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 7}, "192.0.2.1:7"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 9}, "[2001:db8::1]:9"},
		{fakeAddr("[::ffff:10.0.0.1]:80"), "10.0.0.1:80"},
		{fakeAddr("not an address"), ""},
		{nil, ""},
	} {
		got := AddrPort(tt.a)
		if tt.want == "" {
			if got.IsValid() {
				t.Errorf("AddrPort(%v) = %v, want the zero AddrPort", tt.a, got)
			}
			continue
		}
		if got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("AddrPort(%v) = %v, want %s", tt.a, got, tt.want)
		}
	}
}

// TestSocketConnected writes through a connected socket, whose kernel
// refuses a destination: the datagram goes to its peer whatever address
// the caller names, and Read reports the peer as the sender.
func TestSocketConnected(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cu, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cu.Close()
	cli, ss := NewSocket(cu, 1<<20), NewSocket(srv, 0)
	if err := cli.WriteTo([]byte("hi"), netip.MustParseAddrPort("192.0.2.1:1")); err != nil {
		t.Fatalf("write on a connected socket: %v", err)
	}
	buf := make([]byte, 16)
	n, from, err := ss.Read(buf)
	if err != nil || string(buf[:n]) != "hi" || from != cu.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("server read %q from %v (%v)", buf[:n], from, err)
	}
	if err := ss.WriteTo([]byte("ho"), from); err != nil {
		t.Fatal(err)
	}
	n, from, err = cli.Read(buf)
	if err != nil || string(buf[:n]) != "ho" || from != srv.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("client read %q from %v (%v)", buf[:n], from, err)
	}
}
