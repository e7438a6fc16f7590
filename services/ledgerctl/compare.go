package ledgerctl

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/cqhrss/subsidyledger/events"
	"github.com/cqhrss/subsidyledger/projections"
	"github.com/cqhrss/subsidyledger/projections/readmodels"
)

// ReadModelMismatch reports the first read model whose state, rebuilt from
// the source log, differs from the same read model rebuilt from the
// destination log.
type ReadModelMismatch struct {
	Model string
	// Offset is the first byte at which the two encoded states differ;
	// SourceBytes and DestinationBytes are their lengths.
	Offset, SourceBytes, DestinationBytes int
}

func (e *ReadModelMismatch) Error() string {
	return fmt.Sprintf("read model %q differs: rebuilt from the source it encodes to %d bytes, from the destination to %d; they first differ at byte %d",
		e.Model, e.SourceBytes, e.DestinationBytes, e.Offset)
}

// compareReadModels rebuilds every read model (readmodels.Factories) from
// src and from dst and compares their encoded states (each Snapshot), in
// Factories order. It returns the names compared, or a *ReadModelMismatch
// naming the first that differs. The logs' positions are not comparable
// (EventStoreDB's are byte offsets in its own log, the embedded store's
// are dense), and read models keep positions, so both logs are read
// through a view that numbers their events 1, 2, 3, … in global order:
// equal states then mean equal content in equal order.
func compareReadModels(ctx context.Context, src, dst events.Store) ([]string, error) {
	build := func(s events.Store, which string) ([][]byte, []string, error) {
		o, err := newOrdinal(ctx, s)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the %s log: %w", which, err)
		}
		ps := readmodels.Fresh()
		if _, err := projections.Build(ctx, o, ps, projections.BuildOptions{}); err != nil {
			return nil, nil, fmt.Errorf("rebuilding the read models from the %s: %w", which, err)
		}
		states := make([][]byte, len(ps))
		names := make([]string, len(ps))
		for i, p := range ps {
			var b bytes.Buffer
			if err := p.Snapshot(&b); err != nil {
				return nil, nil, fmt.Errorf("encoding read model %q rebuilt from the %s: %w", p.Name(), which, err)
			}
			states[i], names[i] = b.Bytes(), p.Name()
		}
		return states, names, nil
	}
	a, names, err := build(src, "source")
	if err != nil {
		return nil, err
	}
	b, _, err := build(dst, "destination")
	if err != nil {
		return nil, err
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			off := 0
			for off < len(a[i]) && off < len(b[i]) && a[i][off] == b[i][off] {
				off++
			}
			return nil, &ReadModelMismatch{Model: names[i], Offset: off, SourceBytes: len(a[i]), DestinationBytes: len(b[i])}
		}
	}
	return names, nil
}

// ordinal is a read-only view of a store whose events are numbered 1, 2,
// 3, … in global order instead of the store's own positions. It serves
// ReadAll and Head (what projections.Build reads); the log must not grow
// while it is used.
type ordinal struct {
	events.Store
	real []events.Position // real[i] is the store's position of event i+1
}

func newOrdinal(ctx context.Context, s events.Store) (*ordinal, error) {
	o := &ordinal{Store: s}
	for after := events.Start; ; {
		page, err := s.ReadAll(ctx, after, 4096)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return o, nil
		}
		for _, rec := range page {
			o.real = append(o.real, rec.Position)
		}
		after = page[len(page)-1].Position
	}
}

// Head is the number of events.
func (o *ordinal) Head(context.Context) (events.Position, error) {
	return events.Position(len(o.real)), nil
}

// ReadAll reads up to max events after the after-th.
func (o *ordinal) ReadAll(ctx context.Context, after events.Position, max int) ([]events.RecordedEvent, error) {
	if uint64(after) > uint64(len(o.real)) {
		return nil, nil
	}
	from := events.Start
	if after > 0 {
		from = o.real[after-1]
	}
	page, err := o.Store.ReadAll(ctx, from, max)
	if err != nil {
		return nil, err
	}
	page = slices.Clone(page)
	for i := range page {
		n := int(after) + i
		if n >= len(o.real) || page[i].Position != o.real[n] {
			return nil, fmt.Errorf("the log changed while it was read (event %d at position %d)", n+1, page[i].Position)
		}
		page[i].Position = events.Position(n + 1)
	}
	return page, nil
}
