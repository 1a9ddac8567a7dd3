package uxp

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/curve25519"

	ucrypto "github.com/uxp-go/uxp/crypto"
	"github.com/uxp-go/uxp/internal/handshake"
	"github.com/uxp-go/uxp/internal/wire"
)

// Rekeying. A session replaces its transport keys after RekeyAfterTime or
// RekeyAfterPackets, in band, without a new handshake and without pausing
// traffic. docs/protocol.md section 5.5 is the normative description.
//
// Key generations are numbered by an epoch (0 from the handshake). The
// transport header's key-phase bit is epoch&1, so at most two generations
// are live at once and the receiver picks the key from the bit alone:
// slots[phase]. The packet counter is NOT reset by a rekey: it runs on
// across generations, so one replay window covers every key and the FEC
// loss measurement, which reads counter gaps, is undisturbed. A (key,
// counter) pair therefore never repeats.
//
// Exchange (either side may start it; on a collision the client's wins):
//
//	initiator                                  responder
//	  fresh X25519 e_i
//	  REKEY(init, E, e_i)   --- key E-1 --->     fresh e_r; derive keys E
//	                        <--- key E-1 ---    REKEY(ack, E, e_r)
//	  derive keys E; send under E
//	  (keeps E-1 for receiving)
//	                        --- key E ----->     first packet under E: send
//	                                             under E; keep E-1 for
//	                                             rekeyGrace, then zero it
//	  first packet under E: keep E-1 for
//	  rekeyGrace, then zero it
//
// Derivation: (root', c2s, s2c) = HKDF-BLAKE2s(salt = root, ikm =
// X25519(e_i, e_r), info = "uxp/1 rekey" || u32 E), 96 bytes. The first
// root is HKDF-BLAKE2s(salt = none, ikm = c2s0 || s2c0, info = "uxp/1
// rekey root") from the handshake's keys. Each root is zeroed once the next
// one is derived, and the ephemerals once used, so a later compromise of
// the session's memory does not reveal earlier generations' keys.
//
// Rekey frame (type 7), 37-byte body:
//
//	| kind (u8: 0 init, 1 ack) | epoch (u32) | ephemeral public key (32) |

/* Specification constants */
const (
	rekeyRootLabel = "uxp/1 rekey root"
	rekeyLabel     = "uxp/1 rekey"
)

/* Implementation constants */
const (
	defaultRekeyAfterTime    = 2 * time.Minute
	defaultRekeyAfterPackets = 1 << 32
	minRekeyAfterTime        = time.Second
	minRekeyAfterPackets     = 64

	// rekeyGrace is how long the previous generation still opens packets
	// after the peer was heard under the new one: long enough for packets
	// reordered across the switch; anything later is retransmitted by KCP.
	rekeyGrace = 2 * time.Second

	rekeyFirstRetry = 250 * time.Millisecond
	rekeyMaxRetry   = 2 * time.Second

	// minPeerRekeyGap bounds how often a peer can make this side do a
	// responder's rekey work (a key generation and an X25519): an init
	// that arrives sooner after the last one answered is dropped and
	// counted (Drops.RateLimited); the peer retransmits it. An honest
	// peer starts a rekey only once its previous generation retired,
	// rekeyGrace after the switch, so it is never held back.
	minPeerRekeyGap = rekeyGrace / 2
)

// keySlot is one key generation: both directions' AEADs and the raw keys
// they were built from, which retire zeroes.
type keySlot struct {
	epoch            uint32
	send, recv       ucrypto.AEAD
	sendKey, recvKey [ucrypto.KeySize]byte
	heard            bool      // an authenticated packet under this key arrived
	retireAt         time.Time // previous generation: when to zero it
}

func newKeySlot(cipher Cipher, epoch uint32, send, recv *[ucrypto.KeySize]byte) (*keySlot, error) {
	k := &keySlot{epoch: epoch, sendKey: *send, recvKey: *recv}
	var err error
	if k.send, err = ucrypto.NewAEAD(cipher, send); err != nil {
		return nil, err
	}
	if k.recv, err = ucrypto.NewAEAD(cipher, recv); err != nil {
		return nil, err
	}
	return k, nil
}

// zero wipes the raw keys and drops the AEADs. The AEAD objects hold their
// own copies, which become unreachable here; Go offers no way to wipe
// those in place (see crypto.Zero).
func (k *keySlot) zero() {
	ucrypto.Zero(k.sendKey[:])
	ucrypto.Zero(k.recvKey[:])
	k.send, k.recv = nil, nil
}

// rekeyState is the session's key schedule. Owned by the shard.
type rekeyState struct {
	slots       [2]*keySlot // by key phase
	cur         uint32      // the epoch this side sends under
	root        [32]byte    // chaining secret for the next derivation
	since       time.Time   // when cur began
	sentAtStart uint64      // sendCounter when cur began

	// Initiator: an init is out, waiting for the ack.
	pending  bool
	priv     [32]byte
	pub      [32]byte
	retryAt  time.Time
	retryGap time.Duration

	// Responder: the ephemeral sent in the ack, for retransmitted inits,
	// and when the last init was answered (minPeerRekeyGap).
	ackPub   [32]byte
	answered time.Time
	// deferredSince is when the answer to the peer's pending init was
	// first postponed (rekeyAnswerAdmit); zero: none is.
	deferredSince time.Time
}

func blake2sHash() hash.Hash {
	h, _ := blake2s.New256(nil) // cannot fail without a key
	return h
}

// initKeys installs generation 0 from the handshake's keys, and zeroes
// them.
func (c *Conn) initKeys(keys *sessionKeys, now time.Time) error {
	defer keys.zero()
	slot, err := newKeySlot(c.cipher, 0, &keys.send, &keys.recv)
	if err != nil {
		return err
	}
	c2s, s2c := keys.send, keys.recv
	if !c.isClient {
		c2s, s2c = keys.recv, keys.send
	}
	root, err := rekeyRoot(&c2s, &s2c)
	ucrypto.Zero(c2s[:])
	ucrypto.Zero(s2c[:])
	if err != nil {
		return err
	}
	rk := &c.keys
	rk.root = root
	ucrypto.Zero(root[:])
	rk.slots[0] = slot
	rk.since = now
	rk.sentAtStart = c.sendCounter
	return nil
}

// sealKey returns the generation to send under and its key phase.
func (c *Conn) sealKey() (*keySlot, uint8) {
	p := uint8(c.keys.cur & 1)
	return c.keys.slots[p], p
}

// keyHeard runs after a packet opened under slot and passed the replay
// window: the first packet under a new generation is what moves the
// responder to it and starts the previous generation's grace period.
func (c *Conn) keyHeard(slot *keySlot, now time.Time) {
	rk := &c.keys
	if slot.heard {
		return
	}
	slot.heard = true
	if slot.epoch == rk.cur+1 {
		// Responder: the initiator has switched, so may we. It sent its
		// last packets under the old generation before this one.
		if old := rk.slots[rk.cur&1]; old != nil {
			old.retireAt = now.Add(rekeyGrace)
		}
		c.startEpoch(slot.epoch, now)
		return
	}
	if old := rk.slots[(slot.epoch+1)&1]; slot.epoch == rk.cur && old != nil && old.epoch+1 == rk.cur && old.retireAt.IsZero() {
		// Initiator: the responder has switched too.
		old.retireAt = now.Add(rekeyGrace)
	}
}

// startEpoch makes epoch the sending generation. The previous one keeps
// opening packets: on the responder for rekeyGrace, on the initiator until
// rekeyGrace after the responder was heard under the new generation
// (keyHeard), since until then the responder still sends under the old.
func (c *Conn) startEpoch(epoch uint32, now time.Time) {
	rk := &c.keys
	rk.cur = epoch
	rk.since = now
	rk.sentAtStart = c.sendCounter
	c.traffic.rekeys.Add(1)
	c.shard.traffic.rekeys.Add(1)
	c.tr.rekeyed(c.id, uint64(epoch))
}

// retireKey zeroes a generation and frees its slot.
func (c *Conn) retireKey(k *keySlot) {
	k.zero()
	if c.keys.slots[k.epoch&1] == k {
		c.keys.slots[k.epoch&1] = nil
	}
	if h := c.ep.set.hooks.onRetire; h != nil {
		h(k)
	}
}

// zeroKeys wipes every key of an ended session.
func (c *Conn) zeroKeys() {
	rk := &c.keys
	for _, k := range rk.slots {
		if k != nil {
			c.retireKey(k)
		}
	}
	ucrypto.Zero(rk.root[:])
	ucrypto.Zero(rk.priv[:])
	rk.pending = false
}

func (c *Conn) rekeyAfterTime() time.Duration {
	t := c.ep.set.rekeyAfterTime
	if t > 0 && !c.isClient {
		// The client normally starts time-based rekeys; the server is the
		// backstop. This makes collisions rare (they are handled anyway).
		t += t / 8
	}
	if t > 0 {
		t = c.rekeyJittered(t) // rekey_sched.go
	}
	return t
}

// rekeyTick retires expired generations, retransmits an unanswered init,
// and starts a rekey when one is due. It runs on every timer and pump.
func (c *Conn) rekeyTick(now time.Time) {
	rk := &c.keys
	for _, k := range rk.slots {
		if k != nil && !k.retireAt.IsZero() && !now.Before(k.retireAt) {
			c.retireKey(k)
		}
	}
	if c.state != stateEstablished && c.state != stateClosing {
		return
	}
	if rk.pending {
		if !now.Before(rk.retryAt) {
			c.sendRekey(wire.RekeyInit, rk.cur+1, &rk.pub)
			rk.retryGap = min(2*rk.retryGap, rekeyMaxRetry)
			rk.retryAt = now.Add(rk.retryGap)
		}
		return
	}
	set := c.ep.set
	if rk.slots[(rk.cur+1)&1] != nil && !set.hooks.eagerRekey {
		return // a generation is retiring, or we answered and wait
	}
	due := set.rekeyAfterPackets > 0 && c.sendCounter-rk.sentAtStart >= uint64(set.rekeyAfterPackets) || set.hooks.eagerRekey
	if t := c.rekeyAfterTime(); t > 0 && now.Sub(rk.since) >= t {
		due = true
	}
	if !due || !c.rekeyAdmit(now) { // rekey_sched.go: budget and overload
		return
	}
	if _, err := rand.Read(rk.priv[:]); err != nil {
		return
	}
	handshake.CountX25519(&c.ep.x25519)
	pub, err := curve25519.X25519(rk.priv[:], curve25519.Basepoint)
	if err != nil {
		return
	}
	copy(rk.pub[:], pub)
	rk.pending = true
	rk.retryGap = rekeyFirstRetry
	rk.retryAt = now.Add(rk.retryGap)
	c.sendRekey(wire.RekeyInit, rk.cur+1, &rk.pub)
}

// rekeyDeadline is the earliest time rekeyTick has work.
func (c *Conn) rekeyDeadline() time.Time {
	rk := &c.keys
	var d time.Time
	for _, k := range rk.slots {
		if k != nil {
			d = earlier(d, k.retireAt)
		}
	}
	switch {
	case rk.pending:
		d = earlier(d, rk.retryAt)
	case rk.slots[(rk.cur+1)&1] == nil:
		if t := c.rekeyAfterTime(); t > 0 {
			d = earlier(d, later(rk.since.Add(t), c.rekeyWait))
		}
	}
	return d
}

func (c *Conn) sendRekey(kind byte, epoch uint32, pub *[32]byte) {
	var b [wire.RekeySize]byte
	wire.PutRekey(b[:], wire.Rekey{Kind: kind, Epoch: epoch, Pub: *pub})
	c.sendFrame(wire.FrameRekey, b[:])
}

// takeRekey handles an authenticated rekey frame.
func (c *Conn) takeRekey(body []byte, now time.Time) {
	f, ok := wire.ParseRekey(body)
	if !ok {
		c.drop(dropMalformed)
		return
	}
	rk := &c.keys
	if f.Epoch == rk.cur {
		return // a duplicate of a finished exchange
	}
	if f.Epoch != rk.cur+1 {
		c.drop(dropMalformed)
		return
	}
	next := rk.slots[f.Epoch&1]
	switch f.Kind {
	case wire.RekeyInit:
		if next != nil && next.epoch == f.Epoch {
			// Our ack was lost: answer the retransmitted init again.
			c.sendRekey(wire.RekeyAck, f.Epoch, &rk.ackPub)
			return
		}
		if rk.pending && c.isClient {
			return // a collision: the server answers ours instead
		}
		if !rk.answered.IsZero() && now.Sub(rk.answered) < minPeerRekeyGap {
			// Too soon after the last one: every init answered costs a
			// key generation and an X25519, so a peer gets at most one
			// per minPeerRekeyGap.
			c.drop(dropRateLimited)
			return
		}
		if !c.rekeyAnswerAdmit(now) { // rekey_sched.go: budget and overload
			return // the peer retransmits its init
		}
		if rk.pending {
			rk.pending = false
			ucrypto.Zero(rk.priv[:])
		}
		rk.answered = now
		var priv [32]byte
		if _, err := rand.Read(priv[:]); err != nil {
			return
		}
		defer ucrypto.Zero(priv[:])
		handshake.CountX25519(&c.ep.x25519)
		pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
		if err != nil {
			return
		}
		slot, ok := c.deriveKeys(f.Epoch, &priv, &f.Pub)
		if !ok {
			return
		}
		if next != nil {
			// The previous generation is still in its grace period; the
			// peer has moved on, so end it early (KCP resends stragglers).
			c.retireKey(next)
		}
		rk.slots[f.Epoch&1] = slot
		copy(rk.ackPub[:], pub)
		c.sendRekey(wire.RekeyAck, f.Epoch, &rk.ackPub)
	case wire.RekeyAck:
		if !rk.pending {
			return // a duplicate ack
		}
		slot, ok := c.deriveKeys(f.Epoch, &rk.priv, &f.Pub)
		rk.pending = false
		ucrypto.Zero(rk.priv[:])
		if !ok {
			return
		}
		if next != nil {
			c.retireKey(next)
		}
		rk.slots[f.Epoch&1] = slot
		c.startEpoch(f.Epoch, now)
	}
}

// deriveKeys computes generation epoch from our ephemeral private key and
// the peer's ephemeral public key, and advances the root. A low-order peer
// key (all-zero shared secret) is refused and counted.
func (c *Conn) deriveKeys(epoch uint32, priv, peer *[32]byte) (*keySlot, bool) {
	rk := &c.keys
	handshake.CountX25519(&c.ep.x25519)
	dh, err := curve25519.X25519(priv[:], peer[:])
	if err != nil || subtle.ConstantTimeCompare(dh, make([]byte, 32)) == 1 {
		c.drop(dropMalformed)
		return nil, false
	}
	next, c2s, s2c, err := rekeyDerive(&rk.root, epoch, dh)
	ucrypto.Zero(dh)
	defer ucrypto.Zero(next[:])
	defer ucrypto.Zero(c2s[:])
	defer ucrypto.Zero(s2c[:])
	if err != nil {
		return nil, false
	}
	send, recv := &s2c, &c2s
	if c.isClient {
		send, recv = &c2s, &s2c
	}
	slot, err := newKeySlot(c.cipher, epoch, send, recv)
	if err != nil {
		return nil, false
	}
	rk.root = next
	return slot, true
}

// rekeyRoot derives the first rekey root from the handshake's keys:
// HKDF-BLAKE2s(salt = none, ikm = c2s || s2c, info = "uxp/1 rekey root"),
// 32 bytes. Pure, for initKeys and the test vectors.
func rekeyRoot(c2s, s2c *[ucrypto.KeySize]byte) ([32]byte, error) {
	var root [32]byte
	ikm := append(c2s[:], s2c[:]...)
	out, err := hkdf.Key(blake2sHash, ikm, nil, rekeyRootLabel, 32)
	ucrypto.Zero(ikm)
	if err != nil {
		return root, err
	}
	copy(root[:], out)
	ucrypto.Zero(out)
	return root, nil
}

// rekeyDerive derives generation epoch from the current root and the
// ephemerals' shared secret dh: (next root, c2s, s2c) = HKDF-BLAKE2s(salt =
// root, ikm = dh, info = "uxp/1 rekey" || u32 epoch), 96 bytes. Pure, for
// deriveKeys and the test vectors.
func rekeyDerive(root *[32]byte, epoch uint32, dh []byte) (next, c2s, s2c [32]byte, err error) {
	info := binary.LittleEndian.AppendUint32([]byte(rekeyLabel), epoch)
	out, err := hkdf.Key(blake2sHash, dh, root[:], string(info), 96)
	if err != nil {
		return next, c2s, s2c, err
	}
	copy(next[:], out[:32])
	copy(c2s[:], out[32:64])
	copy(s2c[:], out[64:96])
	ucrypto.Zero(out)
	return next, c2s, s2c, nil
}
