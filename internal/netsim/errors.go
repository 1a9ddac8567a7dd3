package netsim

import "errors"

// ErrInvalidImpairment is wrapped by the error from [Impairment.Validate]
// when a probability is outside [0, 1] or a duration is negative.
var ErrInvalidImpairment = errors.New("netsim: invalid impairment")

// ErrAddrInUse is returned by [Network.Listen] and [PacketConn.Rebind] when
// another endpoint of the same [Network] already has the address.
var ErrAddrInUse = errors.New("netsim: address already in use")

// ErrInvalidAddr is returned when an address cannot be parsed as IP:port, or
// when a net.Addr passed to WriteTo does not name a UDP endpoint.
var ErrInvalidAddr = errors.New("netsim: invalid address")

// ErrMessageTooLarge is returned by WriteTo when the datagram is longer than
// [MaxDatagram] bytes.
var ErrMessageTooLarge = errors.New("netsim: message too large")

// ErrPortsExhausted is returned by [Network.Listen] and [PacketConn.Rebind]
// when port 0 is requested and every ephemeral port of the IP is in use.
var ErrPortsExhausted = errors.New("netsim: no free ephemeral port")
