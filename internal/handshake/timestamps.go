package handshake

// TimestampTable enforces that the initiation timestamps of each client key
// strictly increase, so a replayed initiation is ignored (WireGuard's
// anti-replay for handshakes). Its owner is the server's handshake loop.
// It is bounded: past maxEntries keys, an arbitrary entry is forgotten,
// which re-opens replay of that one client's old initiations
// (docs/security.md).
type TimestampTable struct {
	last       map[[32]byte]uint64
	maxEntries int
}

// NewTimestampTable returns a table of at most maxEntries client keys.
func NewTimestampTable(maxEntries int) *TimestampTable {
	return &TimestampTable{last: make(map[[32]byte]uint64), maxEntries: maxEntries}
}

// Fresh reports whether ts is newer than the last accepted one for key.
func (t *TimestampTable) Fresh(key [32]byte, ts uint64) bool {
	last, ok := t.last[key]
	return !ok || ts > last
}

// Accept records ts for key.
func (t *TimestampTable) Accept(key [32]byte, ts uint64) {
	if _, ok := t.last[key]; !ok && len(t.last) >= t.maxEntries {
		for k := range t.last {
			delete(t.last, k)
			break
		}
	}
	t.last[key] = ts
}

// Len is the number of client keys held.
func (t *TimestampTable) Len() int { return len(t.last) }
