package tetragon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/kubetrail/kubetrail"
)

// Reader reads Tetragon events from a JSON export and converts them one by one.
//
// The input is a stream of JSON objects in any layout: one per line as Tetragon's
// export file and `tetra getevents -o json` write them, pretty-printed over many
// lines as in Tetragon's documentation, or concatenated (`cat *.json`). A
// json.Decoder splits the stream, so the layout does not matter.
//
// Next returns, for each record:
//   - the event and an empty reason, for a record kubetrail records;
//   - a zero event and the reason it was skipped, for a record that is valid
//     Tetragon output but not activity kubetrail records (see the package
//     comment). Reasons are short fixed sentences, so callers can count them;
//   - a *kubetrail.Error whose Where is "line N", N being the line the record
//     starts on, for a record that cannot be read. The Reader is then past that
//     record: call Next again to go on, or stop. After malformed JSON, reading
//     resumes at the next line that starts with '{' (the start of the next record
//     in both layouts).
//
// io.EOF follows the last record. Any other error comes from the underlying
// io.Reader; it is final and returned again by later calls.
type Reader struct {
	in   tee
	dec  *json.Decoder
	base int64 // input offset at which dec's input starts
	end  int64 // input offset just past the last record decoded
	err  error // final error (io.EOF or the underlying reader's)
}

// NewReader returns a Reader of the Tetragon JSON export in r.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{in: tee{r: r, line: 1}}
	rd.dec = json.NewDecoder(&rd.in)
	return rd
}

// Next returns the next record's event, or the reason it was skipped. See Reader.
func (r *Reader) Next() (kubetrail.Event, string, error) {
	if r.err != nil {
		return kubetrail.Event{}, "", r.err
	}
	var raw json.RawMessage
	err := r.dec.Decode(&raw)
	if err != nil {
		return kubetrail.Event{}, "", r.decodeError(err)
	}
	r.end = r.base + r.dec.InputOffset()
	start := r.end - int64(len(raw))
	line := r.in.lineOf(start)
	r.in.forget(start)
	ev, skip, err := convert(raw)
	if err != nil {
		var ke *kubetrail.Error
		if errors.As(err, &ke) {
			return kubetrail.Event{}, "", kubetrail.ErrorAt(ke.Code, fmt.Sprintf("line %d", line), "%s", ke.Message)
		}
		return kubetrail.Event{}, "", kubetrail.ErrorAt(kubetrail.EINVALID, fmt.Sprintf("line %d", line), "%v", err)
	}
	return ev, skip, nil
}

// decodeError turns a failed Decode into Next's error, and for malformed JSON sets
// the reader up to go on with the next record.
func (r *Reader) decodeError(err error) error {
	if errors.Is(err, io.EOF) {
		r.err = io.EOF
		return io.EOF
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) {
		r.err = err // the underlying reader failed
		return err
	}
	start := r.in.skipSpace(r.end)
	line := r.in.lineOf(start)
	msg := "the input ends inside this record"
	if se != nil {
		// Offset is just past the byte the decoder stumbled on.
		msg = se.Error()
		if at := r.in.lineOf(r.base + se.Offset - 1); at != line {
			msg += fmt.Sprintf(" (at line %d)", at)
		}
	}
	if rerr := r.resync(start); rerr != nil {
		r.err = rerr
	}
	return kubetrail.ErrorAt(kubetrail.EINVALID, fmt.Sprintf("line %d", line), "malformed JSON: %s", msg)
}

// resync drops the broken record that starts at input offset start: a new decoder
// takes over at the next line that starts with '{', or at the end of the input.
func (r *Reader) resync(start int64) error {
	t := &r.in
	t.forget(start)
	from := 0
	for {
		if i := bytes.Index(t.buf[from:], []byte("\n{")); i >= 0 {
			r.restart(t.off + int64(from+i+1))
			return nil
		}
		if t.eof {
			r.restart(t.off + int64(len(t.buf)))
			return nil
		}
		from = max(len(t.buf)-1, 0) // the last byte may be the newline of "\n{"
		if _, err := t.Read(make([]byte, 32<<10)); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
}

// restart starts a new decoder at input offset at, which the tee still holds.
func (r *Reader) restart(at int64) {
	t := &r.in
	rest := append([]byte(nil), t.buf[at-t.off:]...)
	r.dec = json.NewDecoder(io.MultiReader(bytes.NewReader(rest), t))
	r.base, r.end = at, at
}

// tee passes the input through to the decoder and keeps what it read from offset
// off on, so that offsets can be turned into line numbers and a broken record
// skipped. It forgets what lies before the current record, so it holds little
// more than the decoder's own buffer.
type tee struct {
	r    io.Reader
	buf  []byte // the input from offset off to what has been read
	off  int64
	line int // line number of offset off, from 1
	eof  bool
}

func (t *tee) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	return n, err
}

// lineOf returns the line of input offset o, which must not be before off.
func (t *tee) lineOf(o int64) int {
	k := min(int(o-t.off), len(t.buf))
	return t.line + bytes.Count(t.buf[:max(k, 0)], []byte{'\n'})
}

// forget drops the input before offset o.
func (t *tee) forget(o int64) {
	k := min(int(o-t.off), len(t.buf))
	if k <= 0 {
		return
	}
	t.line += bytes.Count(t.buf[:k], []byte{'\n'})
	t.buf = append(t.buf[:0], t.buf[k:]...)
	t.off += int64(k)
}

// skipSpace returns the offset of the first byte at or after o that is not JSON
// white space, as far as the tee holds the input.
func (t *tee) skipSpace(o int64) int64 {
	i := max(int(o-t.off), 0)
	for i < len(t.buf) {
		switch t.buf[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		}
		break
	}
	return t.off + int64(i)
}
