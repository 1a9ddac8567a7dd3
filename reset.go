package uxp

// Stateless reset (docs/protocol.md section 3.7, after RFC 9000 section
// 10.3): the wire form is wire.PutReset and wire.ParseReset; the token, its
// key and the rate-limited sender are in internal/handshake (reset.go).
// The server answers a transport packet for an unknown session with
// Server.resets; a client checks a reset's token in client_attempt.go and
// ends the session with ErrStatelessReset.
