package fec

import "errors"

// ErrInvalidArgument is wrapped by the errors NewEncoder, NewDecoder and
// SetParity return for an argument out of range. The message names the
// argument.
var ErrInvalidArgument = errors.New("fec: invalid argument")

// ErrPacketTooLarge is returned by Encoder.Encode for a packet longer than the
// encoder's maxPacketSize. Nothing is emitted for it.
var ErrPacketTooLarge = errors.New("fec: packet too large")

// ErrMalformed matches, through errors.Is, every error Decoder.Decode returns
// for a shard it rejected. The caller counts these; the decoder's state is
// unchanged by a rejected shard.
var ErrMalformed = errors.New("fec: malformed shard")

// malformedError is a specific reason for ErrMalformed.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

// Is reports that every malformedError is an ErrMalformed.
func (e *malformedError) Is(target error) bool { return target == ErrMalformed }

// ErrShortShard is returned for a shard shorter than HeaderSize.
var ErrShortShard error = &malformedError{"fec: shard shorter than its header"}

// ErrShardType is returned for a shard whose type byte is neither data nor
// parity.
var ErrShardType error = &malformedError{"fec: unknown shard type"}

// ErrShardCount is returned for a shard whose data count is outside
// 1..MaxDataShards or whose parity count is above MaxParityShards.
var ErrShardCount error = &malformedError{"fec: shard count out of range"}

// ErrShardIndex is returned for a shard whose index does not fit its type and
// counts.
var ErrShardIndex error = &malformedError{"fec: shard index out of range"}

// ErrShardLength is returned for a shard whose length field does not match
// its size, a data shard longer than maxPacketSize, and a parity shard whose
// parity is shorter than 2 bytes or longer than 2 plus maxPacketSize.
var ErrShardLength error = &malformedError{"fec: bad shard length"}

// ErrShardMismatch is returned for a well-formed shard that contradicts
// shards already received for its group: different counts, a parity size
// that differs from an earlier parity shard, or a data shard larger than the
// group's parity shards.
var ErrShardMismatch error = &malformedError{"fec: shard contradicts its group"}

// ErrRecoveryFailed is returned when a group's parity does not decode into
// valid packets, which only a faulty peer can cause. The group is dropped and
// nothing is delivered from the reconstruction.
var ErrRecoveryFailed error = &malformedError{"fec: reconstruction produced an invalid packet"}
