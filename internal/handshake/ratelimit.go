package handshake

import (
	"net/netip"
	"time"
)

// RateLimiter is a per-source token bucket, as in wireguard-go's
// ratelimiter: each source may spend burst tokens at once and earns one
// every interval. Sources are IPv4 addresses and IPv6 /64 prefixes (one
// subscriber usually holds a whole /64). It is pure: the caller passes in
// now, and it is not safe for concurrent use (its owner is one goroutine).
//
// The table is bounded by maxEntries. Buckets that have refilled are
// forgotten by a sweep at most once a second; when the table is still full
// a new source is refused, which fails closed. The Server only consults it
// for initiations that carry a valid mac2, so only addresses that can
// receive packets can fill it.
type RateLimiter struct {
	interval   time.Duration
	burst      int64
	maxEntries int
	buckets    map[[16]byte]*tokenBucket
	lastSweep  time.Time
}

type tokenBucket struct {
	tokens int64 // credit in nanoseconds: one token is interval
	last   time.Time
}

// NewRateLimiter returns a limiter of perSecond tokens a second per
// source, burst at once, over at most maxEntries sources.
func NewRateLimiter(perSecond, burst, maxEntries int) *RateLimiter {
	return &RateLimiter{
		interval:   time.Second / time.Duration(perSecond),
		burst:      int64(burst),
		maxEntries: maxEntries,
		buckets:    make(map[[16]byte]*tokenBucket),
	}
}

// SourceKey is a's source: its IPv4 address (IPv4-mapped addresses
// included) or its IPv6 /64.
func SourceKey(a netip.Addr) [16]byte {
	a = a.Unmap()
	k := a.As16()
	if a.Is6() {
		clear(k[8:]) // the /64
	}
	return k
}

// Allow spends one token of a's bucket and reports whether there was one.
func (r *RateLimiter) Allow(a netip.Addr, now time.Time) bool {
	full := r.burst * int64(r.interval)
	cost := int64(r.interval)
	if now.Sub(r.lastSweep) >= time.Second {
		r.sweep(now)
	}
	k := SourceKey(a)
	b := r.buckets[k]
	if b == nil {
		if len(r.buckets) >= r.maxEntries {
			r.sweep(now)
			if len(r.buckets) >= r.maxEntries {
				return false
			}
		}
		b = &tokenBucket{tokens: full, last: now}
		r.buckets[k] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(full, b.tokens+int64(d))
	}
	b.last = now
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}

// Ready reports whether a's bucket holds a token, without spending it or
// creating a bucket.
func (r *RateLimiter) Ready(a netip.Addr, now time.Time) bool {
	b := r.buckets[SourceKey(a)]
	if b == nil {
		return len(r.buckets) < r.maxEntries // a new bucket starts full
	}
	tokens := b.tokens
	if d := now.Sub(b.last); d > 0 {
		tokens = min(r.burst*int64(r.interval), tokens+int64(d))
	}
	return tokens >= int64(r.interval)
}

// sweep forgets buckets that are full again: they carry no information.
func (r *RateLimiter) sweep(now time.Time) {
	r.lastSweep = now
	full := r.burst * int64(r.interval)
	for k, b := range r.buckets {
		if b.tokens+int64(now.Sub(b.last)) >= full {
			delete(r.buckets, k)
		}
	}
}

// Len is the number of sources tracked.
func (r *RateLimiter) Len() int { return len(r.buckets) }
