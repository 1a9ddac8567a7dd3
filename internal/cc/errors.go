package cc

import "errors"

// ErrInvalidConfig is wrapped by the error from [Config.Validate] (and so
// [New]); the message names the field.
var ErrInvalidConfig = errors.New("cc: invalid config")

// ErrUnknownAlgorithm is wrapped by the error from [New] for an
// [Algorithm] it does not know; the message names it.
var ErrUnknownAlgorithm = errors.New("cc: unknown algorithm")
