package uxp

import "sync/atomic"

// HandshakeStats counts the handshake defences at work. Server fields are
// zero on a Client and client fields zero on a Server.
type HandshakeStats struct {
	// Processed (server): initiations that reached the Diffie-Hellman
	// stage. Under a flood this is what the cookie mechanism bounds.
	Processed uint64
	// CookiesSent (server): cookie replies sent, under load, to
	// initiations without a valid mac2.
	CookiesSent uint64
	// RateLimited (server): initiations with a valid mac2 dropped by the
	// per-source rate limit.
	RateLimited uint64
	// TimestampReplays (server): Noise IK initiations ignored because
	// their timestamp was not newer than the last one accepted for that
	// client key (replays).
	TimestampReplays uint64
	// RefusedFull (server): authenticated refusals because established
	// sessions filled MaxSessions, plus half-open sessions closed
	// unannounced because the server filled up before they were confirmed.
	RefusedFull uint64
	// RefusedClientKey (server): authenticated refusals by the client key
	// policy (Config.Identity).
	RefusedClientKey uint64
	// RefusedIncompatible (server): authenticated refusals because the
	// client's lane count or packet size cannot work with the server's
	// (the client's Start fails with an *IncompatibleError).
	RefusedIncompatible uint64
	// RefusedByApp (server): rejections by the ConnectHandler, deferred
	// ones and panics included (the client gets a *RejectError).
	RefusedByApp uint64
	// Deferred (server): connect requests the ConnectHandler deferred
	// (DeferConnect).
	Deferred uint64
	// SourceLimited (server): initiations dropped, before any
	// Diffie-Hellman and without an answer, because their source held
	// Config.Admission.MaxSessionsPerSource sessions. Also counted in
	// DropStats.RateLimited.
	SourceLimited uint64
	// ResetsSent (server): stateless resets sent for transport packets of
	// unknown sessions.
	ResetsSent uint64
	// CookiesReceived (client): authentic cookie replies received.
	CookiesReceived uint64
	// ResetsReceived (client): authentic stateless resets received (each
	// ends the session with ErrStatelessReset).
	ResetsReceived uint64
}

type handshakeCounters struct {
	processed, cookiesSent, rateLimited, timestampReplays, refusedFull,
	refusedClientKey, resetsSent, cookiesReceived, resetsReceived, sourceLimited,
	refusedIncompatible, refusedByApp, deferred atomic.Uint64
}

func (h *handshakeCounters) snapshot() HandshakeStats {
	return HandshakeStats{
		Processed:           h.processed.Load(),
		CookiesSent:         h.cookiesSent.Load(),
		RateLimited:         h.rateLimited.Load(),
		TimestampReplays:    h.timestampReplays.Load(),
		RefusedFull:         h.refusedFull.Load(),
		RefusedClientKey:    h.refusedClientKey.Load(),
		SourceLimited:       h.sourceLimited.Load(),
		RefusedIncompatible: h.refusedIncompatible.Load(),
		RefusedByApp:        h.refusedByApp.Load(),
		Deferred:            h.deferred.Load(),
		ResetsSent:          h.resetsSent.Load(),
		CookiesReceived:     h.cookiesReceived.Load(),
		ResetsReceived:      h.resetsReceived.Load(),
	}
}
