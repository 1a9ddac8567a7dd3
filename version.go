package uxp

// Version is the version of this module, in semantic versioning form
// (https://semver.org) without the leading "v". It is reported by
// `uxp version` and by the metrics package's uxp_build_info gauge.
//
// The wire protocol has its own version, carried in the handshake prologue
// (see docs/protocol.md); README.md § Versioning says how the two relate.
const Version = "0.9.0"
