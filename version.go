package uxp

import "github.com/uxp-go/uxp/internal/wire"

// Version is the version of this module, in semantic versioning form
// (https://semver.org) without the leading "v". It is reported by
// `uxp version` and by the metrics package's uxp_build_info gauge.
//
// The wire protocol has its own version, ProtocolVersion; README.md
// § Versioning says how the two relate.
const Version = "0.9.0"

// ProtocolVersion is the wire protocol version this module speaks: byte 1
// of the handshake initiation, bound into the Noise prologue together with
// the label "uxp/1 Noise_NK" (docs/protocol.md § 4.2). A server drops an
// initiation of any other version. It changes only with a wire protocol
// break.
const ProtocolVersion = wire.ProtocolVersion
