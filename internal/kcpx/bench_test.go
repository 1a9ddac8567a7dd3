package kcpx

import (
	"testing"

	kcp "github.com/xtaci/kcp-go/v5"
)

// BenchmarkNew reports what making one lane's KCP costs (B/op,
// allocs/op): clone is New's copy of the Factory's prototype (what
// lanes get); newkcp+slim is NewKCP, the tuning and slim (the path
// when the clone layout is unknown); kcp-go-default is NewKCP and the
// tuning alone, the baseline in the same run. The garbage matters when
// thousands of clients join at once.
func BenchmarkNew(b *testing.B) {
	s := NewFactory(Options{Tune: tune})
	out := func([]byte, int) {}
	for _, bc := range []struct {
		name string
		make func() *kcp.KCP
	}{
		{"clone", func() *kcp.KCP { return s.New(1, out, 0) }},
		{"newkcp+slim", func() *kcp.KCP {
			k := kcp.NewKCP(1, out)
			tune(k)
			s.slim(k)
			return k
		}},
		{"kcp-go-default", func() *kcp.KCP {
			k := kcp.NewKCP(1, out)
			tune(k)
			return k
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.make() == nil {
					b.Fatal("no KCP")
				}
			}
		})
	}
}
