package uxp

import (
	"crypto/rand"
	"io"

	"github.com/uxp-go/uxp/internal/cc"
)

// testHooks are this package's test-only knobs. A Config carries them in
// its one unexported field, hooks, which only this package's tests set
// (nil in every other program); resolve copies them into settings, where
// the zero value means "no hook". Each hook runs on the goroutine named in
// its comment.
type testHooks struct {
	// dropShard drops chosen FEC shards on the way out (after they were
	// counted as sent). Shard goroutine.
	dropShard func(shard []byte) bool
	// dropLane drops chosen lane frames (data or ACKs; segs are their
	// KCP segments) on the way out. Shard goroutine.
	dropLane func(lane int, segs []byte) bool
	// rewriteFrame is called on the shard with every frame body before it
	// is sealed, to forge what an authenticated peer may send.
	rewriteFrame func(kind byte, body []byte)
	// eagerRekey starts a rekey whenever none is pending, without waiting
	// for the previous generation to retire (a peer flooding rekeys).
	eagerRekey bool
	// startCounter is the first packet counter of every session (to reach
	// counter exhaustion quickly).
	startCounter uint64
	// onRetire is called on the shard after a key generation was zeroed.
	onRetire func(k *keySlot)
	// kcpTick makes lanes run KCP's interval tick while any data is
	// unacknowledged, as before internal/kcpx SendWork (the baseline the
	// timer-work tests and benchmarks compare with).
	kcpTick bool
	// noTimeoutHold turns internal/arq's timeout hold off under a gating
	// controller (the baseline its tests compare with).
	noTimeoutHold bool
	// wrapController wraps each session's congestion controller when it
	// is made (a controller whose state a test forces). Shard goroutine.
	wrapController func(cc.Controller) cc.Controller
	// kcpAudited replaces internal/kcpx's audited kcp-go versions when
	// not nil (empty: the public-API fallback).
	kcpAudited []string
	// oldHello announces no packet size and no lane count, as a client
	// from before negotiation.
	oldHello bool
	// rand replaces crypto/rand for a handshake's randomness: a client's
	// sender index and ephemeral key, a server's session ID and ephemeral
	// key (a deterministic session for the wire transcript test). Only
	// the goroutine of one side's handshakes reads it.
	rand io.Reader
	// aes pretends this side has (aesPresent) or lacks (aesAbsent) AES
	// instructions instead of asking the CPU (cipher negotiation).
	aes aesOverride
}

// rng is the randomness of the handshakes: crypto/rand unless a test
// injected its own.
func (s *settings) rng() io.Reader {
	if s.hooks.rand != nil {
		return s.hooks.rand
	}
	return rand.Reader
}
