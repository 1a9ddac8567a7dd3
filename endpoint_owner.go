package uxp

import "net/netip"

// endpointOwner is what an endpoint calls up into: the Server, a Client or
// a Dialer that runs it. Every owner implements every method, so the hot
// path calls them without a nil check; a client-side owner gets the
// server-only events from dialSide, which ignores them.
type endpointOwner interface {
	// Called on the read loop.

	// onInitiation takes a handshake initiation and owns bp when it
	// reports true; false means this owner takes no initiations (the
	// endpoint counts the datagram malformed and frees bp).
	onInitiation(bp *packetBuf, n int, from netip.AddrPort) bool
	// onResponse takes a handshake response; b is valid during the call.
	// False: the endpoint counts it malformed.
	onResponse(b []byte, from netip.AddrPort) bool
	// onControl takes a cookie reply or a stateless reset and owns bp
	// when it reports true. False: the endpoint counts it malformed and
	// frees bp.
	onControl(bp *packetBuf, n int, from netip.AddrPort) bool
	// onUnknownSession sees a transport packet for an unknown session ID
	// (a server answers with a stateless reset); b is valid during the
	// call.
	onUnknownSession(b []byte, from netip.AddrPort)
	// onReadError sees a read error that does not end the endpoint, such
	// as ECONNREFUSED from an ICMP port unreachable.
	onReadError(err error)

	// Called on a shard goroutine, no lock held.

	// onAdmit decides whether a server session whose client proved its
	// keys may be established: a close code other than CloseNormal
	// refuses it.
	onAdmit(c *Conn) uint16
	// onEstablished announces an admitted server session.
	onEstablished(c *Conn)
	// onConnClosed runs once a session ended; announced tells whether the
	// application saw it.
	onConnClosed(c *Conn, err error, announced bool)
	// onConnFreed runs once an ended session left the tables: at once,
	// or after draining.
	onConnFreed(c *Conn)
}

var (
	_ endpointOwner = (*Server)(nil)
	_ endpointOwner = (*Client)(nil)
	_ endpointOwner = (*Dialer)(nil)
)

// dialSide gives the client-side owners (Client, Dialer) the answers to the
// events only a server acts on, and no-ops they may override.
type dialSide struct{}

func (dialSide) onInitiation(*packetBuf, int, netip.AddrPort) bool { return false }
func (dialSide) onUnknownSession([]byte, netip.AddrPort)           {}
func (dialSide) onReadError(error)                                 {}
func (dialSide) onAdmit(*Conn) uint16                              { return CloseNormal }
func (dialSide) onEstablished(*Conn)                               {}
func (dialSide) onConnClosed(*Conn, error, bool)                   {}
func (dialSide) onConnFreed(*Conn)                                 {}
