package arq

import "testing"

// TestFullSize: a received data segment is full-size for the ACK policy
// when it is at least the KCP MTU, or, with FullSlack, exactly FullSlack
// bytes shorter (a peer that reserves room this side does not); any other
// shorter segment is the tail of a burst.
func TestFullSize(t *testing.T) {
	tests := []struct {
		name  string
		slack int
		n     int
		want  bool
	}{
		{"mtu", 0, 1458, true},
		{"larger", 0, 1471, true},
		{"one short", 0, 1457, false},
		{"slack short, no slack", 0, 1445, false},
		{"slack short", 13, 1445, true},
		{"between", 13, 1450, false},
		{"below slack", 13, 1444, false},
		{"mtu with slack", 13, 1458, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := &Lanes{mtu: 1458, cfg: Config{FullSlack: tt.slack}}
			if got := ls.fullSize(tt.n); got != tt.want {
				t.Fatalf("fullSize(%d) with slack %d = %v, want %v", tt.n, tt.slack, got, tt.want)
			}
		})
	}
}
