// Package snap is the compact binary encoding of snapshots (the read
// models' and the rules' World): unsigned and signed varints,
// length-prefixed strings and bytes, written through a buffered writer and
// read back with a sticky error, so that a model's Snapshot and Restore
// read as a list of fields.
//
// The encoding carries no field tags: a snapshot is read by the code that
// wrote it (the projection's Version guards that), which keeps it small
// and fast for a million trainees.
package snap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"
)

// ErrCorrupt reports a snapshot that does not decode.
var ErrCorrupt = errors.New("snap: corrupt snapshot")

// maxLen bounds one string or byte field, so that a damaged length cannot
// make Restore allocate gigabytes.
const maxLen = 1 << 26

// Writer encodes fields. Errors are sticky: check Err (or Flush) once at
// the end.
type Writer struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 256<<10)} }

func (w *Writer) write(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}

// Uvarint writes an unsigned integer.
func (w *Writer) Uvarint(v uint64) { w.write(w.buf[:binary.PutUvarint(w.buf[:], v)]) }

// Varint writes a signed integer.
func (w *Writer) Varint(v int64) { w.write(w.buf[:binary.PutVarint(w.buf[:], v)]) }

// Int writes an int.
func (w *Writer) Int(v int) { w.Varint(int64(v)) }

// Bool writes a bool.
func (w *Writer) Bool(v bool) {
	if v {
		w.Uvarint(1)
	} else {
		w.Uvarint(0)
	}
}

// String writes a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	if w.err == nil {
		_, w.err = w.w.WriteString(s)
	}
}

// Bytes writes a length-prefixed byte slice.
func (w *Writer) Bytes(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.write(b)
}

// Fixed writes b as is (the reader must know its length).
func (w *Writer) Fixed(b []byte) { w.write(b) }

// Err returns the first error met.
func (w *Writer) Err() error { return w.err }

// Flush writes buffered data and returns the first error met.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// Reader decodes fields written by Writer. Errors are sticky: after the
// first, every read returns the zero value; check Err at the end. It keeps
// its own buffer so that varints decode straight from it (a restart
// restores hundreds of megabytes).
type Reader struct {
	r     io.Reader
	buf   []byte
	pos   int
	end   int
	eof   bool
	err   error
	nread int64 // bytes read from r
	size  int64 // the input's size, if known (SetSize); else -1
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, buf: make([]byte, 256<<10), size: -1} }

// SetSize tells the Reader the size of its whole input. Len then also
// refuses a count larger than the bytes left (every element takes at least
// one), so that a damaged count cannot make the caller allocate more than
// the input could fill.
func (r *Reader) SetSize(n int64) { r.size = n }

func (r *Reader) fail(err error) {
	if r.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		// Nothing more is read: the inlined paths of Uvarint and
		// Fixed, which do not look at err, find the buffer empty.
		r.pos, r.end, r.eof = 0, 0, true
	}
}

// fill makes at least n bytes available if the input has them (n at most
// the buffer's size) and reports whether it did.
func (r *Reader) fill(n int) bool {
	if r.end-r.pos >= n {
		return true
	}
	copy(r.buf, r.buf[r.pos:r.end])
	r.end -= r.pos
	r.pos = 0
	for r.end < n && !r.eof {
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		r.nread += int64(m)
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			r.fail(err)
			return false
		}
	}
	return r.end >= n
}

// Uvarint reads an unsigned integer.
func (r *Reader) Uvarint() uint64 {
	// Most are below 128, one byte: this much is inlined where it is
	// called (a snapshot of 10 million events reads tens of millions).
	if p := r.pos; p < r.end {
		if b := r.buf[p]; b < 0x80 {
			r.pos = p + 1
			return uint64(b)
		}
	}
	return r.uvarint()
}

func (r *Reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	if r.end-r.pos < binary.MaxVarintLen64 {
		r.fill(binary.MaxVarintLen64) // may fall short at the end of input
	}
	v, n := binary.Uvarint(r.buf[r.pos:r.end])
	if n <= 0 {
		if n == 0 {
			r.fail(io.ErrUnexpectedEOF)
		} else {
			r.fail(errors.New("varint overflows 64 bits"))
		}
		return 0
	}
	r.pos += n
	return v
}

// Varint reads a signed integer.
func (r *Reader) Varint() int64 {
	u := r.Uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// Int reads an int.
func (r *Reader) Int() int { return int(r.Varint()) }

// Int32 reads an int32, failing if the value does not fit.
func (r *Reader) Int32() int32 {
	v := r.Varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail(fmt.Errorf("int32 out of range: %d", v))
		return 0
	}
	return int32(v)
}

// Bool reads a bool.
func (r *Reader) Bool() bool { return r.Uvarint() != 0 }

// Len reads a count and checks it against max (a sanity bound) and, after
// SetSize, against the bytes left.
func (r *Reader) Len(bound int) int { return r.LenOf(bound, 1) }

// LenOf reads a count of elements of at least size bytes each and checks
// it against bound and, after SetSize, against the bytes left.
func (r *Reader) LenOf(bound, size int) int {
	n := r.Uvarint()
	if n > uint64(bound) {
		r.fail(fmt.Errorf("count %d exceeds %d", n, bound))
		return 0
	}
	if left := r.size - (r.nread - int64(r.end-r.pos)); r.size >= 0 && n > uint64(max(left, 0))/uint64(max(size, 1)) {
		r.fail(fmt.Errorf("count %d of %d bytes each exceeds the %d bytes left", n, size, left))
		return 0
	}
	return int(n)
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.Len(maxLen)
	if r.err != nil || n == 0 {
		return ""
	}
	if p := r.pos; r.end-p >= n { // one allocation, the string's
		r.pos = p + n
		return string(r.buf[p : p+n])
	}
	b := make([]byte, n)
	r.Block(b)
	return unsafe.String(unsafe.SliceData(b), n) // b is not kept
}

// Bytes reads a length-prefixed byte slice (a new slice).
func (r *Reader) Bytes() []byte {
	n := r.Len(maxLen)
	if r.err != nil || n == 0 {
		return nil
	}
	b := make([]byte, n)
	r.Block(b)
	return b
}

// Fixed fills b. It does not keep b, and b does not escape: a caller's
// local array filled by Fixed stays on its stack (reading into it
// straight from the underlying io.Reader would move every such array to
// the heap, an allocation per id read). Block is for large slices.
func (r *Reader) Fixed(b []byte) {
	if p := r.pos; r.end-p >= len(b) { // inlined: the bytes are in the buffer (none after a failure)
		r.pos = p + copy(b, r.buf[p:])
		return
	}
	r.fixed(b)
}

func (r *Reader) fixed(b []byte) {
	for len(b) > 0 && r.err == nil {
		if r.pos == r.end && !r.fill(1) {
			r.fail(io.ErrUnexpectedEOF)
			return
		}
		n := copy(b, r.buf[r.pos:r.end])
		r.pos += n
		b = b[n:]
	}
}

// Block fills b as Fixed does, but reads a part larger than the Reader's
// buffer straight into b rather than through the buffer: for blocks of
// records. b escapes (it is handed to the underlying io.Reader).
func (r *Reader) Block(b []byte) {
	n := copy(b, r.buf[r.pos:r.end]) // what the buffer holds (nothing after a failure)
	r.pos += n
	if b = b[n:]; len(b) >= len(r.buf) && !r.eof && r.err == nil {
		n, err := io.ReadFull(r.r, b)
		r.nread += int64(n)
		if err != nil {
			r.fail(err)
		}
		return
	}
	r.fixed(b)
}

// Err returns the first error met.
func (r *Reader) Err() error { return r.err }

// Fail records a semantic error found by the caller (e.g. an index out of
// range), so that Restore reports it like a decoding error.
func (r *Reader) Fail(format string, args ...any) { r.fail(fmt.Errorf(format, args...)) }

// Magic writes or checks a short header naming the snapshot's owner and
// version, so that a snapshot is never read by the wrong model.
func (w *Writer) Magic(name string, version uint32) {
	w.String(name)
	w.Uvarint(uint64(version))
}

// Magic checks the header written by Writer.Magic.
func (r *Reader) Magic(name string, version uint32) {
	n, v := r.String(), r.Uvarint()
	if r.err == nil && (n != name || v != uint64(version)) {
		r.fail(fmt.Errorf("snapshot of %q version %d, want %q version %d", n, v, name, version))
	}
}
