package replay

import "testing"

func BenchmarkAccept(b *testing.B) {
	b.Run("in-order", func(b *testing.B) {
		var w Window
		var c uint64
		b.ReportAllocs()
		for b.Loop() {
			if !w.Accept(c) {
				b.Fatal("rejected", c)
			}
			c++
		}
	})
	b.Run("out-of-order", func(b *testing.B) {
		// Runs of 32 arrive reversed, so half of the packets are behind
		// Max and every run crosses into a new block.
		var w Window
		var i uint64
		b.ReportAllocs()
		for b.Loop() {
			c := i&^31 | (31 - i&31)
			if !w.Accept(c) {
				b.Fatal("rejected", c)
			}
			i++
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		var w Window
		w.Accept(1000)
		b.ReportAllocs()
		for b.Loop() {
			if w.Accept(1000) {
				b.Fatal("duplicate accepted")
			}
		}
	})
	b.Run("jump", func(b *testing.B) {
		// Every counter jumps past the whole ring: the worst case, 128 stores.
		var w Window
		var c uint64
		b.ReportAllocs()
		for b.Loop() {
			c += 2 * WindowSize
			if !w.Accept(c) {
				b.Fatal("rejected", c)
			}
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	var w Window
	for c := range uint64(WindowSize) {
		w.Accept(c)
	}
	var c uint64
	b.ReportAllocs()
	for b.Loop() {
		w.Check(c % (2 * WindowSize))
		c++
	}
}
