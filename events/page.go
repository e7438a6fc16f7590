package events

import "context"

// PageReader is implemented by stores that can read the global log into
// memory the caller recycles. A walk over the whole log (Verify,
// merkle.VerifyLog) reads millions of events; with ReadAll every page is
// allocated afresh and left to the garbage collector.
type PageReader interface {
	// ReadAllInto reads into p what ReadAll(ctx, after, max) returns,
	// replacing p.Events. The events' Metadata and Data lie in memory that
	// p owns and reuses: they are valid until p is read into again (or
	// Reset). Stream and Type are ordinary strings.
	//
	// Errors: those of ReadAll.
	ReadAllInto(ctx context.Context, after Position, max int, p *Page) error
}

// Page is a page of the global log read by ReadPage, with the memory it
// reuses from one read to the next. The zero Page is ready to use; a Page
// is not safe for concurrent use.
type Page struct {
	Events []RecordedEvent
	chunks [][]byte // byte arenas, reused in order
	cur    int      // the chunk being filled
}

// pageChunk is the size of a Page's byte arenas.
const pageChunk = 256 << 10

// Reset empties p, keeping its memory for the next read: the events and
// bytes it held are no longer valid.
func (p *Page) Reset() {
	p.Events = p.Events[:0]
	for i := range p.chunks {
		p.chunks[i] = p.chunks[i][:0]
	}
	p.cur = 0
}

// Copy returns a copy of b in p's memory, valid until p is reset (nil when
// b is empty). Stores implementing PageReader use it for the events' bytes.
func (p *Page) Copy(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > pageChunk/4 {
		return append([]byte(nil), b...)
	}
	for ; p.cur < len(p.chunks); p.cur++ {
		c := p.chunks[p.cur]
		if cap(c)-len(c) >= len(b) {
			s := len(c)
			c = append(c, b...)
			p.chunks[p.cur] = c
			return c[s:len(c):len(c)]
		}
	}
	c := append(make([]byte, 0, pageChunk), b...)
	p.chunks = append(p.chunks, c)
	return c[:len(b):len(b)]
}

// ReadPage reads into p, after resetting it, up to max events of s's
// global log with positions greater than after: with s's ReadAllInto when
// s is a PageReader, else with ReadAll. An empty p.Events means the end of
// the log.
//
// Errors: those of ReadAll.
func ReadPage(ctx context.Context, s Store, after Position, max int, p *Page) error {
	if pr, ok := s.(PageReader); ok {
		return pr.ReadAllInto(ctx, after, max, p)
	}
	p.Reset()
	evs, err := s.ReadAll(ctx, after, max)
	if err != nil {
		return err
	}
	p.Events = append(p.Events, evs...)
	return nil
}

// PageSubscription is implemented by subscriptions that can deliver events
// a page at a time into memory the caller recycles (bolt's). A follower of
// the live log (the projections, the outbound feed, the Merkle sealer) that
// takes every event otherwise has each event's bytes allocated afresh.
type PageSubscription interface {
	// NextPage blocks until at least one matching event is available and
	// reads the next ones, at most max (max <= 0: the backend's choice),
	// into p, replacing p.Events. The events' Metadata and Data are valid
	// until p is read into again; the order and exactly-once delivery are
	// Next's, and Next and NextPage may be mixed.
	//
	// Errors: those of Next.
	NextPage(ctx context.Context, max int, p *Page) error
}

// NextPage reads the next events of sub into p: through the subscription's
// NextPage when it is a PageSubscription, else one event through Next.
//
// Errors: those of Next.
func NextPage(ctx context.Context, sub Subscription, max int, p *Page) error {
	if ps, ok := sub.(PageSubscription); ok {
		return ps.NextPage(ctx, max, p)
	}
	p.Reset()
	e, err := sub.Next(ctx)
	if err != nil {
		return err
	}
	p.Events = append(p.Events, e)
	return nil
}
