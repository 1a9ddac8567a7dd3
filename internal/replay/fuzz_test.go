package replay

import (
	"encoding/binary"
	"testing"
)

// model is the reference semantics of Window: a set of accepted counters and
// the highest one, with no memory limit.
type model struct {
	seen map[uint64]bool
	max  uint64
}

func (m *model) acceptable(c uint64) bool {
	if c >= RejectAfter || m.seen[c] {
		return false
	}
	return c > m.max || m.max-c <= WindowSize
}

func (m *model) accept(c uint64) bool {
	if !m.acceptable(c) {
		return false
	}
	m.seen[c] = true
	m.max = max(m.max, c)
	return true
}

// FuzzWindow runs a random sequence of Check and Accept calls against both
// Window and the model. Each 3-byte record is an op byte and a 16-bit
// argument; the op chooses how the counter is derived from the previous one
// so that the fuzzer reaches duplicates, reordering, window edges, big jumps
// and RejectAfter rather than only random 64-bit values.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 8, 2, 0, 1})
	f.Add([]byte{0, 0xc1, 0x1f, 3, 0xc1, 0x1f, 4, 0, 0, 5, 0, 1, 6, 0, 3})
	f.Add([]byte{7, 0xff, 0xff, 4, 0, 1, 0, 1, 0, 12, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		var w Window
		m := model{seen: make(map[uint64]bool)}
		var prev uint64
		for len(data) >= 3 {
			op, arg := data[0], uint64(binary.LittleEndian.Uint16(data[1:3]))
			data = data[3:]

			var c uint64
			switch op % 8 {
			case 0: // forward
				c = prev + arg
			case 1: // backward, possibly to 0
				c = prev - min(arg, prev)
			case 2: // around the window edge behind Max
				c = m.max - min(m.max, WindowSize-16+arg%32)
			case 3: // far ahead, possibly past the whole ring
				c = prev + arg<<8
			case 4: // near RejectAfter
				c = RejectAfter - 8 + arg%16
			case 5: // absolute, high bits set by the argument
				c = arg<<48 | arg
			case 6: // repeat
				c = prev
			case 7: // small absolute
				c = arg % 256
			}

			want := m.acceptable(c)
			if got := w.Check(c); got != want {
				t.Fatalf("Check(%d) = %v, want %v (max %d)", c, got, want, m.max)
			}
			if op&0x80 != 0 {
				// Check only, as for a packet that failed to authenticate.
				continue
			}
			if got, want := w.Accept(c), m.accept(c); got != want {
				t.Fatalf("Accept(%d) = %v, want %v (max %d)", c, got, want, m.max)
			}
			if w.Max() != m.max {
				t.Fatalf("Max() = %d, want %d", w.Max(), m.max)
			}
			prev = c
		}
	})
}
