package bolt

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cqhrss/subsidyledger/events"
)

// killChildEnv names the data file a child process of TestKillDuringMerges
// appends to until it is killed.
const killChildEnv = "BOLT_KILL_CHILD_STORE"

// killEvent is the event a killed child appended with id: its body follows
// from its ID, so that the parent can append it again.
func killEvent(id events.ID) events.EventData {
	return events.EventData{ID: id, Type: "t.Kill", Data: []byte("kill " + id.String())}
}

// TestKillDuringMerges appends from a child process, with the ID buffer
// merged into the ID index every few commits (so that merges of slices are
// under way all the time), and kills it with SIGKILL at a random moment,
// several times. After each kill the store must hold every append the
// child reported done, where its result said; answer each again as the
// same append (idempotency, from the buffer rebuilt at Open or the index);
// and keep each event's ID in the index up to its slice's merge mark and
// in the buffer after it.
func TestKillDuringMerges(t *testing.T) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path)
		return
	}
	if testing.Short() {
		t.Skip("kills a child process several times")
	}
	path := filepath.Join(t.TempDir(), "events.db")
	type done struct {
		stream string
		first  uint64 // position of its first event
		ids    []events.ID
	}
	var acked []done
	rnd := rand.New(rand.NewPCG(7, 11))
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringMerges$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var lines []string
		read := make(chan struct{})
		go func() {
			defer close(read)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				lines = append(lines, sc.Text())
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(150+rnd.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-read
		cmd.Wait()
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] == "" {
				continue // cut off by the kill
			}
			first, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			var ids []events.ID
			for _, s := range strings.Split(f[2], ",") {
				id, err := events.ParseID(s)
				if err != nil {
					ids = nil
					break
				}
				ids = append(ids, id)
			}
			if len(ids) == 0 {
				continue
			}
			acked = append(acked, done{f[0], first, ids})
			n++
		}
		if n == 0 {
			t.Fatalf("round %d: the child reported no append before the kill", round)
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: Open after the kill = %v", round, err)
		}
		s.mergeIDsAt = 1 << 30 // no merges while the parent checks
		ctx := context.Background()
		ops := make([]*events.AppendOp, len(acked))
		for i, a := range acked {
			evs := make([]events.EventData, len(a.ids))
			for j, id := range a.ids {
				evs[j] = killEvent(id)
			}
			ops[i] = &events.AppendOp{Stream: a.stream, Expected: events.Any, Events: evs}
		}
		s.AppendBatch(ctx, ops)
		for i, a := range acked {
			res, err := ops[i].Result, ops[i].Err
			if want := a.first + uint64(len(a.ids)) - 1; err != nil || uint64(res.Position) != want {
				t.Fatalf("round %d: append of %d events to %s acknowledged at %d..%d, appended again: %+v, %v; want it answered as stored",
					round, len(a.ids), a.stream, a.first, want, res, err)
			}
		}
		merged, buffered, err := checkIDIndex(s)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d appends acknowledged so far; %d IDs in the index, %d buffered", round, len(acked), merged, buffered)
	}
}

// killChild appends batches of appends to path until it is killed, and
// reports each append done on stdout once AppendBatch has returned (so
// once it is durable): stream, first position, IDs.
func killChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	s.mergeIDsAt = 40
	rnd := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	w := bufio.NewWriter(os.Stdout)
	for {
		ops := make([]*events.AppendOp, 16)
		for i := range ops {
			evs := make([]events.EventData, 1+rnd.IntN(3))
			for j := range evs {
				evs[j] = killEvent(events.RandomID())
			}
			ops[i] = &events.AppendOp{Stream: fmt.Sprintf("kill-%d", rnd.IntN(300)), Expected: events.Any, Events: evs}
		}
		s.AppendBatch(context.Background(), ops)
		for _, o := range ops {
			if o.Err != nil {
				fmt.Fprintln(os.Stderr, "child:", o.Err)
				os.Exit(2)
			}
			ids := make([]string, len(o.Events))
			for i, e := range o.Events {
				ids[i] = e.ID.String()
			}
			first := uint64(o.Result.Position) - uint64(len(o.Events)) + 1
			fmt.Fprintf(w, "%s %d %s\n", o.Stream, first, strings.Join(ids, ","))
		}
		w.Flush()
	}
}
