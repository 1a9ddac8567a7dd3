package netsim

import "time"

// delayQueue is a min-heap of values ordered by due time, then by insertion
// order, so packets with equal due times leave in the order they were sent.
// It is not safe for concurrent use; its owner guards it.
type delayQueue[T any] struct {
	items []timed[T]
	seq   uint64
}

type timed[T any] struct {
	due time.Time
	seq uint64
	v   T
}

func (q *delayQueue[T]) len() int { return len(q.items) }

func (q *delayQueue[T]) less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	if !a.due.Equal(b.due) {
		return a.due.Before(b.due)
	}
	return a.seq < b.seq
}

// push adds v and reports whether it became the earliest item, in which case
// the owner must re-arm its timer.
func (q *delayQueue[T]) push(due time.Time, v T) bool {
	q.seq++
	q.items = append(q.items, timed[T]{due: due, seq: q.seq, v: v})
	i := len(q.items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q.items[i], q.items[parent] = q.items[parent], q.items[i]
		i = parent
	}
	return i == 0
}

// next returns the earliest due time.
func (q *delayQueue[T]) next() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].due, true
}

// popDue removes and returns the earliest value if it is due at now.
func (q *delayQueue[T]) popDue(now time.Time) (T, bool) {
	var zero T
	if len(q.items) == 0 || q.items[0].due.After(now) {
		return zero, false
	}
	v := q.items[0].v
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items[last] = timed[T]{} // drop the reference to the packet
	q.items = q.items[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q.items) && q.less(l, m) {
			m = l
		}
		if r < len(q.items) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return v, true
}

// clear removes every value and returns how many there were.
func (q *delayQueue[T]) clear() int {
	n := len(q.items)
	clear(q.items)
	q.items = q.items[:0]
	return n
}
