// Package esdbtest is an in-process STAND-IN for EventStoreDB, for tests.
// It is not EventStoreDB and proves nothing about compatibility with it.
//
// The stand-in serves, over real gRPC on a local port, the calls that
// package esdb makes through the EventStoreDB Go client
// (github.com/EventStore/EventStore-Client-Go/v4), using the client
// module's own generated service definitions:
//
//   - streams.Streams/Append: expected revisions (any, no stream, stream
//     exists, exact), the wrong-expected-version result with the current
//     revision, EventStoreDB's documented dedupe of an append whose event
//     IDs already follow the expected revision (answered with the stored
//     revision and no position), the maximum append size;
//   - streams.Streams/Read: reads of a stream forwards and backwards, stream
//     not found, reads of $all forwards and backwards from the start, the
//     end or a position, catch-up subscriptions to $all from the start, the
//     end or after a position, with server-side filters on stream name or
//     event type (prefixes or a regular expression) and checkpoints;
//   - server_features.ServerFeatures, only when Version is set (servers
//     before 21.10 lack it, and the client copes).
//
// Its log is in memory. Positions in $all are sparse, like EventStoreDB's
// byte offsets, the first event is at position 0, an event's commit and
// prepare positions are equal, and a read or subscription from a position
// that is not an event's (nor the end) is refused, as EventStoreDB refuses
// positions inside its records. Events read from streams carry their $all
// positions (EventStoreDB does so since 22.10).
//
// What it does not do: persistence, clusters and gossip, TLS and
// authentication, deleting streams, stream metadata ($maxCount and the
// like), links and projections, system streams of its own, persistent
// subscriptions, BatchAppend, subscriptions to single streams, the
// caught-up and fell-behind messages of newer servers. Where EventStoreDB's
// behaviour is undocumented (a backwards read from past a stream's end,
// the exact size accounting of appends, the exact checkpoint positions) it
// does the plain thing, which may differ.
package esdbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DefaultMaxAppendSize is EventStoreDB's default --max-append-size.
const DefaultMaxAppendSize = 1 << 20

// StandIn is an in-process stand-in for an EventStoreDB node. Its log
// outlives Stop, so that a test can take the server away and bring it back
// on the same address.
type StandIn struct {
	// MaxAppendSize is the largest append in bytes (data, metadata and
	// twice the type's length, summed over the events). Zero means 1 MiB.
	// Set it before Listen.
	MaxAppendSize int
	// Version, when set (e.g. "24.10.0"), is the server version the
	// server-features call reports. Set it before Listen.
	Version string

	mu      sync.Mutex
	log     []*record
	at      map[uint64]int // log index by position
	streams map[string]*stream
	next    uint64        // the position the next event gets
	sig     chan struct{} // closed and replaced at each commit

	srvMu sync.Mutex
	srv   *grpc.Server
	lis   net.Listener
	addr  string
	subs  map[int]context.CancelFunc
	subID int
}

type record struct {
	id          [16]byte
	stream      string
	revision    uint64
	position    uint64
	typ         string
	contentType string
	created     int64 // .NET ticks (100 ns) since the Unix epoch
	metadata    []byte
	data        []byte
}

type stream struct {
	recs []*record
	ids  map[[16]byte]uint64 // revision by event ID
}

// NewStandIn returns a stand-in with an empty log, not yet listening.
func NewStandIn() *StandIn {
	return &StandIn{
		at:      make(map[uint64]int),
		streams: make(map[string]*stream),
		sig:     make(chan struct{}),
		subs:    make(map[int]context.CancelFunc),
	}
}

// Listen serves on addr ("127.0.0.1:0" for a free port) until Stop.
func (s *StandIn) Listen(addr string) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return errors.New("esdbtest: stand-in already listening")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	api.RegisterStreamsServer(srv, &streamsServer{s: s})
	if s.Version != "" {
		serverfeatures.RegisterServerFeaturesServer(srv, &featuresServer{s: s})
	}
	s.srv, s.lis, s.addr = srv, lis, lis.Addr().String()
	go srv.Serve(lis)
	return nil
}

// Addr returns the address the stand-in listens (or last listened) on.
func (s *StandIn) Addr() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.addr
}

// URL returns the connection string of the stand-in for the client:
// esdb://ADDR?tls=false.
func (s *StandIn) URL() string { return "esdb://" + s.Addr() + "?tls=false" }

// Stop stops serving at once: connections close, subscriptions and calls
// in flight fail. The log is kept; Listen(Addr()) serves it again.
func (s *StandIn) Stop() {
	s.srvMu.Lock()
	srv := s.srv
	s.srv = nil
	s.srvMu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// DropSubscriptions ends every subscription in progress with an error, as
// EventStoreDB does when it drops slow or aborted subscribers.
func (s *StandIn) DropSubscriptions() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	for id, cancel := range s.subs {
		cancel()
		delete(s.subs, id)
	}
}

// Events returns the number of events in the log.
func (s *StandIn) Events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

func (s *StandIn) maxAppendSize() int {
	if s.MaxAppendSize > 0 {
		return s.MaxAppendSize
	}
	return DefaultMaxAppendSize
}

type featuresServer struct {
	serverfeatures.UnimplementedServerFeaturesServer
	s *StandIn
}

func (f *featuresServer) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: f.s.Version,
		Methods: []*serverfeatures.SupportedMethod{
			{ServiceName: "event_store.client.streams.streams", MethodName: "read"},
			{ServiceName: "event_store.client.streams.streams", MethodName: "append"},
		},
	}, nil
}

type streamsServer struct {
	api.UnimplementedStreamsServer
	s *StandIn
}

// Append implements streams.Streams/Append.
func (ss *streamsServer) Append(as api.Streams_AppendServer) error {
	s := ss.s
	first, err := as.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil || len(opts.GetStreamIdentifier().GetStreamName()) == 0 {
		return status.Error(codes.InvalidArgument, "stand-in: an append starts with its options and a stream name")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var proposed []*record
	size := 0
	for {
		m, err := as.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := m.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "stand-in: expected a proposed message")
		}
		r, err := proposedRecord(name, pm)
		if err != nil {
			return err
		}
		size += len(r.data) + len(r.metadata) + 2*utf16Len(r.typ)
		proposed = append(proposed, r)
	}
	if size > s.maxAppendSize() {
		as.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", fmt.Sprint(s.maxAppendSize())))
		return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", s.maxAppendSize())
	}
	return as.SendAndClose(s.append(name, opts, proposed))
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += max(utf16.RuneLen(r), 1)
	}
	return n
}

func proposedRecord(stream string, pm *api.AppendReq_ProposedMessage) (*record, error) {
	r := &record{
		stream:      stream,
		typ:         pm.GetMetadata()["type"],
		contentType: pm.GetMetadata()["content-type"],
		metadata:    bytes.Clone(pm.GetCustomMetadata()),
		data:        bytes.Clone(pm.GetData()),
	}
	if r.typ == "" || r.contentType == "" {
		return nil, status.Error(codes.InvalidArgument, "stand-in: the type and content-type metadata are required")
	}
	id := pm.GetId()
	switch {
	case id.GetStructured() != nil:
		putUint64(r.id[:8], uint64(id.GetStructured().GetMostSignificantBits()))
		putUint64(r.id[8:], uint64(id.GetStructured().GetLeastSignificantBits()))
	case id.GetString_() != "":
		b, err := parseUUID(id.GetString_())
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "stand-in: "+err.Error())
		}
		r.id = b
	default:
		return nil, status.Error(codes.InvalidArgument, "stand-in: an event needs an id")
	}
	return r, nil
}

// append applies an append under the log's lock and returns the response.
func (s *StandIn) append(name string, opts *api.AppendReq_Options, proposed []*record) *api.AppendResp {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	var last int64 = -1
	if st != nil {
		last = int64(len(st.recs)) - 1
	}
	ok := false
	var expectedRev int64 = -2 // the revision the events follow, if the expectation names one
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		ok = true
	case *api.AppendReq_Options_NoStream:
		ok, expectedRev = last == -1, -1
	case *api.AppendReq_Options_StreamExists:
		ok = last >= 0
	case *api.AppendReq_Options_Revision:
		ok, expectedRev = last == int64(e.Revision), int64(e.Revision)
	}
	// EventStoreDB's dedupe: events whose IDs already follow the expected
	// revision (for "any", wherever the first of them is) are not stored
	// again; the append succeeds with their revision and no position.
	if st != nil && len(proposed) > 0 {
		from := int64(-1)
		if expectedRev >= -1 && !ok {
			from = expectedRev + 1
		} else if _, isAny := opts.GetExpectedStreamRevision().(*api.AppendReq_Options_Any); isAny {
			if rev, found := st.ids[proposed[0].id]; found {
				from = int64(rev)
			}
		}
		if from >= 0 && from+int64(len(proposed))-1 <= last {
			same := true
			for i, r := range proposed {
				if st.recs[from+int64(i)].id != r.id {
					same = false
					break
				}
			}
			if same {
				return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
					CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(from) + uint64(len(proposed)) - 1},
					PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
				}}}
			}
		}
	}
	if !ok {
		w := &api.AppendResp_WrongExpectedVersion{}
		if last < 0 {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(last)}
		}
		switch e := opts.GetExpectedStreamRevision().(type) {
		case *api.AppendReq_Options_NoStream:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		case *api.AppendReq_Options_StreamExists:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		case *api.AppendReq_Options_Revision:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
		}
		return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
	}
	if st == nil {
		st = &stream{ids: make(map[[16]byte]uint64)}
		s.streams[name] = st
	}
	created := time.Now().UnixNano() / 100
	for _, r := range proposed {
		r.revision = uint64(len(st.recs))
		r.position = s.next
		r.created = created
		// Sparse, like EventStoreDB's byte offsets in its log.
		s.next += uint64(64 + len(r.stream) + len(r.typ) + len(r.metadata) + len(r.data))
		st.recs = append(st.recs, r)
		st.ids[r.id] = r.revision
		s.at[r.position] = len(s.log)
		s.log = append(s.log, r)
	}
	resp := &api.AppendResp_Success{}
	if n := len(st.recs); n == 0 {
		resp.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		resp.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(n - 1)}
	}
	if len(proposed) == 0 {
		resp.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		p := proposed[len(proposed)-1].position
		resp.PositionOption = &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: p, PreparePosition: p}}
		close(s.sig)
		s.sig = make(chan struct{})
	}
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: resp}}
}

// Read implements streams.Streams/Read.
func (ss *streamsServer) Read(req *api.ReadReq, rs api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "stand-in: a read needs options")
	}
	stringIDs := o.GetUuidOption().GetString_() != nil
	switch {
	case o.GetStream() != nil && o.GetSubscription() != nil:
		return status.Error(codes.Unimplemented, "stand-in: subscriptions to a single stream are not implemented")
	case o.GetStream() != nil:
		return ss.readStream(o, rs, stringIDs)
	case o.GetAll() != nil && o.GetSubscription() != nil:
		return ss.subscribeAll(o, rs, stringIDs)
	case o.GetAll() != nil:
		return ss.readAll(o, rs, stringIDs)
	}
	return status.Error(codes.InvalidArgument, "stand-in: a read names a stream or $all")
}

func (ss *streamsServer) readStream(o *api.ReadReq_Options, rs api.Streams_ReadServer, stringIDs bool) error {
	s := ss.s
	so := o.GetStream()
	name := so.GetStreamIdentifier().GetStreamName()
	s.mu.Lock()
	var recs []*record
	if st := s.streams[string(name)]; st != nil {
		recs = st.recs[:len(st.recs):len(st.recs)]
	}
	s.mu.Unlock()
	if len(recs) == 0 {
		return rs.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: name}}}})
	}
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	last := uint64(len(recs) - 1)
	var from uint64
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = r.Revision
	case *api.ReadReq_Options_StreamOptions_Start:
		from = 0
	case *api.ReadReq_Options_StreamOptions_End:
		if !backwards {
			return nil
		}
		from = last
	default:
		return status.Error(codes.InvalidArgument, "stand-in: a stream read needs a revision, start or end")
	}
	count := o.GetCount()
	var out []*record
	if backwards {
		for i := int64(min(from, last)); i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, recs[i])
		}
	} else {
		for i := from; i <= last && uint64(len(out)) < count; i++ {
			out = append(out, recs[i])
		}
	}
	for _, r := range out {
		if err := rs.Send(eventResp(r, stringIDs)); err != nil {
			return err
		}
	}
	return nil
}

// startIndex returns the log index a read or subscription of $all starts
// at for the given all-option: inclusive for forward reads, exclusive for
// subscriptions (which start after a position) and backward reads (which
// read before it).
func (s *StandIn) startIndex(ao *api.ReadReq_Options_AllOptions, after bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		return 0, nil
	case *api.ReadReq_Options_AllOptions_End:
		return len(s.log), nil
	case *api.ReadReq_Options_AllOptions_Position:
		p := a.Position
		if p.GetCommitPosition() != p.GetPreparePosition() {
			return 0, status.Errorf(codes.InvalidArgument, "stand-in: invalid position %d/%d", p.GetCommitPosition(), p.GetPreparePosition())
		}
		if p.GetCommitPosition() == s.next {
			return len(s.log), nil
		}
		i, ok := s.at[p.GetCommitPosition()]
		if !ok {
			return 0, status.Errorf(codes.InvalidArgument, "stand-in: invalid position %d: no record starts there", p.GetCommitPosition())
		}
		if after {
			i++
		}
		return i, nil
	}
	return 0, status.Error(codes.InvalidArgument, "stand-in: a read of $all needs a position, start or end")
}

func (ss *streamsServer) readAll(o *api.ReadReq_Options, rs api.Streams_ReadServer, stringIDs bool) error {
	s := ss.s
	f, err := newFilter(o.GetFilter())
	if err != nil {
		return err
	}
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	i, err := s.startIndex(o.GetAll(), false)
	if err != nil {
		return err
	}
	s.mu.Lock()
	log := s.log[:len(s.log):len(s.log)]
	s.mu.Unlock()
	count := o.GetCount()
	var sent uint64
	step := 1
	if backwards {
		i, step = i-1, -1
	}
	for ; i >= 0 && i < len(log) && sent < count; i += step {
		if !f.match(log[i]) {
			continue
		}
		if err := rs.Send(eventResp(log[i], stringIDs)); err != nil {
			return err
		}
		sent++
	}
	return nil
}

func (ss *streamsServer) subscribeAll(o *api.ReadReq_Options, rs api.Streams_ReadServer, stringIDs bool) error {
	s := ss.s
	f, err := newFilter(o.GetFilter())
	if err != nil {
		return err
	}
	i, err := s.startIndex(o.GetAll(), true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(rs.Context())
	defer cancel()
	s.srvMu.Lock()
	s.subID++
	id := s.subID
	s.subs[id] = cancel
	s.srvMu.Unlock()
	defer func() {
		s.srvMu.Lock()
		delete(s.subs, id)
		s.srvMu.Unlock()
	}()
	if err := rs.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: fmt.Sprintf("stand-in-%d", id)}}}); err != nil {
		return err
	}
	scanned := 0
	for {
		s.mu.Lock()
		log, sig := s.log[:len(s.log):len(s.log)], s.sig
		s.mu.Unlock()
		for ; i < len(log); i++ {
			if ctx.Err() != nil {
				return status.Error(codes.Aborted, "stand-in: subscription dropped")
			}
			r := log[i]
			if !f.match(r) {
				scanned++
				if f.checkpoint > 0 && scanned >= f.checkpoint {
					scanned = 0
					if err := rs.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
						CommitPosition: r.position, PreparePosition: r.position}}}); err != nil {
						return err
					}
				}
				continue
			}
			if err := rs.Send(eventResp(r, stringIDs)); err != nil {
				return err
			}
		}
		select {
		case <-sig:
		case <-ctx.Done():
			if rs.Context().Err() != nil {
				return rs.Context().Err()
			}
			return status.Error(codes.Aborted, "stand-in: subscription dropped")
		}
	}
}

// filter is a server-side filter of $all.
type filter struct {
	on         func(*record) string // the field filtered on; nil: no filter
	prefixes   []string
	re         *regexp.Regexp
	checkpoint int // checkpoint after this many events filtered out
}

func newFilter(fo *api.ReadReq_Options_FilterOptions) (*filter, error) {
	f := &filter{}
	if fo == nil {
		return f, nil
	}
	var ex *api.ReadReq_Options_FilterOptions_Expression
	switch {
	case fo.GetStreamIdentifier() != nil:
		ex, f.on = fo.GetStreamIdentifier(), func(r *record) string { return r.stream }
	case fo.GetEventType() != nil:
		ex, f.on = fo.GetEventType(), func(r *record) string { return r.typ }
	default:
		return f, nil
	}
	f.prefixes = ex.GetPrefix()
	if ex.GetRegex() != "" {
		re, err := regexp.Compile(ex.GetRegex())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "stand-in: filter regex: %v", err)
		}
		f.re = re
	}
	if w := int(fo.GetMax()); w > 0 {
		f.checkpoint = w * max(int(fo.GetCheckpointIntervalMultiplier()), 1)
	}
	return f, nil
}

func (f *filter) match(r *record) bool {
	if f.on == nil {
		return true
	}
	v := f.on(r)
	if f.re != nil {
		return f.re.MatchString(v)
	}
	return slices.ContainsFunc(f.prefixes, func(p string) bool { return strings.HasPrefix(v, p) })
}

func eventResp(r *record, stringIDs bool) *api.ReadResp {
	id := &shared.UUID{}
	if stringIDs {
		id.Value = &shared.UUID_String_{String_: formatUUID(r.id)}
	} else {
		id.Value = &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
			MostSignificantBits:  int64(getUint64(r.id[:8])),
			LeastSignificantBits: int64(getUint64(r.id[8:])),
		}}
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               id,
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.position,
			CommitPosition:   r.position,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": r.contentType,
				"created":      fmt.Sprint(r.created),
			},
			CustomMetadata: r.metadata,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.position},
	}}}
}

func putUint64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b[:8] {
		v = v<<8 | uint64(c)
	}
	return v
}

func formatUUID(id [16]byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b.WriteByte('-')
		}
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func parseUUID(s string) ([16]byte, error) {
	var id [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return id, fmt.Errorf("malformed uuid %q", s)
	}
	for i := range id {
		var v byte
		for _, c := range []byte(h[2*i : 2*i+2]) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			case c >= 'A' && c <= 'F':
				v = v<<4 | (c - 'A' + 10)
			default:
				return id, fmt.Errorf("malformed uuid %q", s)
			}
		}
		id[i] = v
	}
	return id, nil
}
