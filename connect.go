package uxp

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// ConnectHandler is an optional interface a ServerHandler may implement to
// decide about each client before any session exists for it. The server
// calls OnConnectRequest for every initiation that authenticated and
// passed the server's own checks (client key policy, MaxSessions, FEC,
// negotiation), on its handshake goroutine, with no SDK lock held.
//
// It returns AcceptConnect, RejectConnect or DeferConnect. The zero
// ConnectDecision accepts. OnConnectRequest must return quickly: while it
// runs, no other initiation is answered. Anything slow (an auth backend)
// belongs behind DeferConnect. A panic is a rejection with code 0: it is
// logged with its stack and counted in ServerStats.CallbackPanics.
//
// A handler that means to implement it can say so at compile time:
//
//	var _ uxp.ConnectHandler = (*MyServer)(nil)
type ConnectHandler interface {
	OnConnectRequest(req *ConnectRequest) ConnectDecision
}

// ConnectDecision is what OnConnectRequest returns. The zero value
// accepts with no accept data.
type ConnectDecision struct {
	kind   decisionKind
	code   uint16
	reason string
	data   []byte
}

type decisionKind uint8

const (
	decideAccept decisionKind = iota
	decideReject
	decideDefer
)

// AcceptConnect accepts the client. acceptData, at most MaxAcceptDataSize
// bytes, reaches the client's Conn.AcceptData, encrypted and
// authenticated, when the client sent connect data (its longer initiation
// leaves the room; see docs/protocol.md). Otherwise it is not sent. Longer
// acceptData refuses the client as a panic would, with code 0.
func AcceptConnect(acceptData []byte) ConnectDecision {
	return ConnectDecision{kind: decideAccept, data: acceptData}
}

// RejectConnect rejects the client: no session is created, and the
// client's Start or Dial fails with a *RejectError carrying code and
// reason, authenticated. A reason longer than MaxRejectReasonSize bytes
// is cut; a client that sent no connect data receives at most 25 bytes of
// it.
func RejectConnect(code uint16, reason string) ConnectDecision {
	return ConnectDecision{kind: decideReject, code: code, reason: reason}
}

// DeferConnect leaves the decision for later: call req.Accept or
// req.Reject from any goroutine before req.Deadline. Until then the
// client's retransmissions are ignored and other initiations are answered
// as usual. Without an answer by the deadline the request is dropped and
// the client's Start times out. At most maxPendingRequests (4096) requests
// wait at once; beyond that, an initiation is dropped unanswered (the
// client retransmits) and counted in DropStats.Overload.
func DeferConnect() ConnectDecision { return ConnectDecision{kind: decideDefer} }

// ErrRequestDone is returned by ConnectRequest.Accept and Reject when the
// request was already answered, was not deferred, or passed its deadline.
var ErrRequestDone = errors.New("uxp: connect request already answered, not deferred, or expired")

// ConnectRequest is one client's request for a session, as
// OnConnectRequest sees it. Its accessors are safe from any goroutine, and
// it stays valid after OnConnectRequest returns.
type ConnectRequest struct {
	s          *Server
	remote     netip.AddrPort
	peerKey    PublicKey
	hasPeerKey bool
	data       []byte
	deadline   time.Time
	deferred   atomic.Bool // DeferConnect was returned
	answered   atomic.Bool // Accept or Reject was called
	decision   ConnectDecision

	// Owned by the handshake loop.
	h      *serverHandshake
	src    [16]byte
	proven bool
	eph    [noiseKeySize]byte
	fec    fecParams
	mtu    int
	answer []byte // a rejection sent, resent to retransmissions
}

// RemoteAddr returns the client's address.
func (r *ConnectRequest) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(r.remote) }

// PeerKey returns the client's authenticated static key and true when it
// used Noise IK (Config.Identity.ClientPrivateKey), or false for an
// anonymous client.
func (r *ConnectRequest) PeerKey() (PublicKey, bool) { return r.peerKey, r.hasPeerKey }

// ConnectData returns the client's Config.ConnectData, authenticated and
// decrypted; nil when it sent none. The caller must not modify it.
func (r *ConnectRequest) ConnectData() []byte { return r.data }

// Deadline returns when a deferred request expires: the handshake timeout
// after its initiation arrived.
func (r *ConnectRequest) Deadline() time.Time { return r.deadline }

// Accept answers a deferred request (DeferConnect) with an acceptance, as
// AcceptConnect(acceptData) would have. It returns at once; the server's
// handshake goroutine finishes the handshake. It returns ErrRequestDone
// when the request was not deferred, was already answered, or expired.
func (r *ConnectRequest) Accept(acceptData []byte) error {
	return r.answerLater(AcceptConnect(append([]byte(nil), acceptData...)))
}

// Reject answers a deferred request with a rejection, as
// RejectConnect(code, reason) would have. Like Accept, it returns at once
// and returns ErrRequestDone when the request cannot take an answer.
func (r *ConnectRequest) Reject(code uint16, reason string) error {
	return r.answerLater(RejectConnect(code, reason))
}

func (r *ConnectRequest) answerLater(d ConnectDecision) error {
	if !r.deferred.Load() || !time.Now().Before(r.deadline) || !r.answered.CompareAndSwap(false, true) {
		return ErrRequestDone
	}
	r.decision = d // published by the channel send
	select {
	case r.s.decisions <- r:
		return nil
	default:
		// Cannot happen while the table bounds the requests that may
		// answer; refuse loudly rather than block the caller.
		return ErrRequestDone
	}
}

/* Implementation constants */
const (
	// maxPendingRequests bounds deferred requests waiting for an answer
	// (docs/security.md).
	maxPendingRequests = 4096
)

// decide runs the application's OnConnectRequest on the handshake loop. A
// panic is a rejection with code 0.
func (s *Server) decide(ch ConnectHandler, req *ConnectRequest) (d ConnectDecision) {
	defer func() {
		if r := recover(); r != nil {
			s.ep.callbackPanicked("OnConnectRequest", 0, r)
			d = RejectConnect(0, "")
		}
	}()
	d = ch.OnConnectRequest(req)
	if d.kind == decideAccept && len(d.data) > MaxAcceptDataSize {
		s.ep.log.Error("uxp: OnConnectRequest: accept data longer than MaxAcceptDataSize: client refused", "size", len(d.data))
		d = RejectConnect(0, "")
	}
	return d
}

// applyDecision carries out a decision on the handshake loop: opens the
// session, or sends the rejection.
func (s *Server) applyDecision(req *ConnectRequest, d ConnectDecision, now time.Time) {
	if d.kind == decideAccept && len(d.data) > MaxAcceptDataSize {
		s.ep.log.Error("uxp: ConnectRequest.Accept: accept data longer than MaxAcceptDataSize: client refused", "size", len(d.data))
		d = RejectConnect(0, "")
	}
	if d.kind == decideReject {
		err := &RejectError{Code: d.code, Reason: d.reason}
		s.hstats.refusedByApp.Add(1)
		s.tr.handshakeRefused(req.remote, err)
		resp, _, werr := req.h.writeAnswer(0, statusRejected, fecParams{}, nil,
			s.set.answer(req.remote, 0, d.code, []byte(d.reason)))
		if werr == nil {
			req.answer = resp
			_ = s.ep.writeTo(resp, req.remote)
		}
		return
	}
	s.open(req, d.data, now)
}

// takeDecision runs on the handshake loop with a deferred request's
// answer.
func (s *Server) takeDecision(req *ConnectRequest, now time.Time) {
	if s.pending[req.eph] != req || !now.Before(req.deadline) {
		return // expired meanwhile
	}
	if req.decision.kind == decideAccept {
		// The server may have filled up, or begun to shut down, while
		// the application thought.
		s.halfMu.Lock()
		halfOpen := len(s.halfOpen)
		s.halfMu.Unlock()
		status := statusOK
		switch {
		case s.refusing.Load():
			status = statusShuttingDown
		case s.set.maxSessions > 0 && int(s.sessions.Load()) >= s.set.maxSessions,
			s.lst != nil && s.lst.backlogFull(halfOpen):
			status = statusServerFull
			s.hstats.refusedFull.Add(1)
		}
		if status != statusOK {
			s.tr.handshakeRefused(req.remote, statusErr(status))
			resp, _, err := req.h.writeAnswer(0, status, fecParams{}, nil, s.set.answer(req.remote, 0, 0, nil))
			if err == nil {
				req.answer = resp
				_ = s.ep.writeTo(resp, req.remote)
			}
			return
		}
	}
	s.applyDecision(req, req.decision, now)
	if req.answer == nil {
		delete(s.pending, req.eph) // accepted: the half-open table answers from now on
	}
}

// sweepPending drops expired requests. Handshake loop only.
func (s *Server) sweepPending(now time.Time) {
	for k, r := range s.pending {
		if !now.Before(r.deadline) {
			delete(s.pending, k)
		}
	}
}
