// Package fec is a Reed-Solomon forward-error-correction encoder and decoder
// for the packets of a uxp session.
//
// The package is pure: it does no I/O, starts no goroutines and reads no
// clock; every method that needs the time takes now. On the way out each KCP
// output packet goes through Encoder, and each shard it emits is sealed with
// the session's AEAD and sent as one datagram. On the way in each opened,
// replay-checked datagram goes through Decoder, which delivers packets to KCP.
//
// # Wire format
//
// Packets are grouped; a group is up to data data shards followed by parity
// parity shards, computed with github.com/klauspost/reedsolomon over the
// shards' regions. Every shard starts with the same HeaderSize (10) bytes;
// multi-byte fields are little-endian, like KCP's.
//
//	 0               4       5       6       7       8               10
//	 +---------------+-------+-------+-------+-------+---------------+-----------------+
//	 |     group     | index | type  | data  |parity |    length     |  packet ...     |  data
//	 +---------------+-------+-------+-------+-------+---------------+-----------------+
//	                                                 |<-- region (covered by RS) ----->|
//
//	 +---------------+-------+-------+-------+-------+---------------+-----------------+
//	 |     group     | index | type  | data  |parity |    length     |  parity ...     |  parity
//	 +---------------+-------+-------+-------+-------+---------------+-----------------+
//	                                                                 |<-- region ----->|
//
//	group   uint32  group sequence ID; +1 per group, wraps 0xFFFFFFFF -> 0
//	index   uint8   0..data-1 for data shards, data..data+parity-1 for parity
//	type    uint8   0xF1 data, 0xF2 parity
//	data    uint8   data-shard count, 1..MaxDataShards
//	parity  uint8   parity-shard count, 0..MaxParityShards
//	length  uint16  bytes after the header: the packet length, or the parity
//	                size; it must match the shard size exactly
//
// A data shard's region is its length field and packet, sent unpadded. For
// coding, every region of a group is zero-padded to the group's largest, so
// a parity region is 2 bytes longer than the group's largest packet, and a
// reconstructed region is cut back to its packet by its own length field.
// HeaderSize is what the encoder adds in front of a packet.
//
// Because every shard carries both counts, the decoder needs no settings from
// the peer and the sender may change its parity between groups
// (Encoder.SetParity). Data shards carry the configured data count; when
// Encoder.Flush closes a group early, its parity shards carry the smaller
// count of data shards actually sent. With zero parity every packet is a
// group of one data shard.
//
// # Usage
//
// Sending: call Encoder.Encode for each packet, and Encoder.Flush when now
// reaches Encoder.Deadline, so that sparse traffic gets parity too. Fold
// Deadline into the session's single timer.
//
// Receiving: call Decoder.Decode for each shard and Decoder.Expire from the
// session's timer (every maxAge/2 or so). Count the errors Decode returns.
//
// Both pass slices to a callback that are only valid during the call.
//
// # Guarantees
//
//   - Data shards are delivered as soon as they arrive; nothing waits for
//     parity.
//   - A group missing m data shards is reconstructed as soon as m of its
//     parity shards are in, and the missing packets are delivered at once.
//   - No data shard is delivered twice, whether it arrived again or was
//     recovered, as long as its group is remembered (see below).
//   - A malformed shard is rejected with an error matching ErrMalformed and
//     leaves the decoder's state as it was, except that ErrRecoveryFailed
//     drops the group whose parity did not decode. Shards are never trusted for a
//     length before it is checked; no input panics.
//   - In steady state neither Encode nor Decode allocates, recovery
//     included. Building a codec for a new (data, parity) pair allocates.
//
// # Limits
//
// The decoder holds at most maxGroups incomplete groups; a new group beyond
// that first expires groups by age and then drops the oldest. A group is
// dropped when it is maxAge old (Decoder.Expire) or when a shard arrives for a
// group 1024 or more IDs newer (distance, wrap-around safe: the difference is
// taken as an int32). The decoder remembers which of the last 1024 group IDs
// finished or were dropped and ignores their later shards, as it ignores
// shards of groups older than that; such a late data shard is not delivered.
// An incomplete group keeps copies of fewer than its data count of regions
// (a group reconstructs as soon as it has as many), each in a buffer of the
// smallest size class that holds it (16, 32, 64, ... bytes up to
// maxPacketSize+2), so tiny shards pin little more than they carry; plus up
// to MaxParityShards scratch regions for recovery. Decoder.SetLimits
// (Limits, decoder_mem.go) bounds what a shard may claim to the counts the
// session negotiated, and the bytes held to Limits.MaxBytes: the oldest
// incomplete groups are dropped to stay within it. Freed buffers are pooled
// up to two groups' worth and returned to the runtime beyond that;
// Decoder.Held reports the total. The codec cache holds at most 64 codecs,
// least recently used first out, and every build is paid for with credit
// earned per accepted shard, so a peer cycling through (data, parity) pairs
// cannot make builds cost more than decoding its shards does. The encoder
// holds data+parity shard buffers.
//
// # Concurrency
//
// Encoder and Decoder are not safe for concurrent use. Each is owned by the
// goroutine that owns its session (its worker shard), and only that goroutine
// calls it. The emit and deliver callbacks run on that goroutine, inside the
// call, and must not call back into the Encoder or Decoder running them.
//
// # Security
//
// FEC is not authentication. The decoder expects shards that the AEAD has
// already opened and the replay window has already filtered, so only the
// peer itself can send them. It still validates every field: a faulty or
// hostile peer can at worst use up the bounded memory above and CPU on
// reconstruction. A peer whose parity disagrees with its own data can make a
// reconstruction deliver wrong bytes, but such a peer could send those bytes
// as data anyway. Header fields are not secret.
//
// # Limitations
//
// A data shard that arrives after its group expired is dropped rather than
// delivered; KCP retransmits it. Groups with zero parity are not buffered, so
// nothing is recovered for them. Expired counts a flushed group whose parity
// was all lost even if all its data arrived, because only the parity says the
// group was short. On arm64 reedsolomon's NEON kernels allocate a small
// buffer per encoded group (untested here).
package fec
