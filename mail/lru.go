package mail

import (
	"container/list"
	"sync"
)

// lru is a map of at most limit bytes (as estimated by the caller), the
// least recently used entries dropped first. It is safe for concurrent
// use.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	items map[K]*list.Element
	order list.List // of *lruItem[K, V], most recently used first
	bytes int
	limit int
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	size int
}

func newLRU[K comparable, V any](limit int) *lru[K, V] {
	return &lru[K, V]{items: map[K]*list.Element{}, limit: limit}
}

func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruItem[K, V]).val, true
}

// getEach looks up every key under one lock, most recently used last,
// and calls each with the key's index and what get would return; each
// runs under the lock and must not use c.
func (c *lru[K, V]) getEach(keys []K, each func(i int, v V, ok bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	for i, k := range keys {
		e, ok := c.items[k]
		if !ok {
			each(i, zero, false)
			continue
		}
		c.order.MoveToFront(e)
		each(i, e.Value.(*lruItem[K, V]).val, true)
	}
}

// put stores v under k with its estimated size; the newest entry stays
// even when it alone exceeds the limit.
func (c *lru[K, V]) put(k K, v V, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.bytes -= e.Value.(*lruItem[K, V]).size
		c.order.Remove(e)
	}
	c.items[k] = c.order.PushFront(&lruItem[K, V]{key: k, val: v, size: size})
	c.bytes += size
	for c.bytes > c.limit && c.order.Len() > 1 {
		old := c.order.Back().Value.(*lruItem[K, V])
		c.order.Remove(c.order.Back())
		delete(c.items, old.key)
		c.bytes -= old.size
	}
}
