package uxp

import (
	"runtime/debug"
)

// Application callbacks run on SDK goroutines (the handshake loop, a
// shard), so a panic in one must not unwind through the SDK: every call
// site recovers it. What a panic means depends on the callback:
//
//   - a decision callback (Config.Identity.AuthorizeClient) answers no: the
//     client is refused as if the callback had returned false;
//   - a session callback (OnNewConnComing, OnReady, OnNewDataComing,
//     OnNewLaneDataComing, OnNewDatagramComing, OnMigrated) ends that
//     session only, with a *CallbackPanicError, and tells the peer
//     (close reason "protocol error" until close codes carry a dedicated
//     "callback panic" reason);
//   - a callback that reports an end (OnClosed, OnConnClosed, the Server's
//     OnClosed) has nothing left to end: the panic is only logged.
//
// Every one is logged at error level with its stack and counted in
// ServerStats.CallbackPanics.

// callbackPanicked logs and counts a recovered panic of the application
// callback name (session 0: none). Safe from any goroutine.
func (ep *endpoint) callbackPanicked(name string, session uint32, v any) {
	ep.callbackPanics.Add(1)
	ep.log.Error("uxp: application callback panicked", "callback", name, "session", session, "panic", v, "stack", string(debug.Stack()))
}
