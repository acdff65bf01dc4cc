package k8saudit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/kubetrail/kubetrail"
)

// Reader reads audit events from an audit log file. It accepts, one after another
// in any mix:
//
//   - Events as --audit-log-format=json writes them, one per line;
//   - Events pretty-printed over many lines;
//   - EventLists (a saved webhook POST body), read item by item;
//   - Azure Event Hub payloads {"records":[...]} and single Event Hub records of
//     AKS diagnostic logs, whose properties.log holds the Event as a JSON string;
//   - objects with neither kind nor apiVersion, read as EventList items (see the
//     package comment).
//
// A UTF-8 byte order mark is skipped at the start (and between records, where
// concatenated files put it).
//
// Next returns a *kubetrail.Error for a record it refuses, with Where "line N", N
// being the line the record starts on. The Reader is then already positioned past
// that record, so the caller decides: call Next again to go on with the next
// record (to report every bad record), or stop. Where a record is broken so badly
// that its end cannot be found (an unclosed string or brace), reading resumes at
// the next line that starts with '{'. Any other error (from the underlying
// io.Reader) is final and returned again by every later call.
type Reader struct {
	cluster string
	in      *bufio.Reader
	line    int  // line of the next byte to read, from 1
	col0    bool // the next byte to read starts a line
	buf     []byte
	err     error // a read error, returned from then on

	// Elements still to hand out from the last EventList or Event Hub payload.
	list    []byte
	pending []listItem

	// raw is the audit Event JSON of the event Next returned last.
	raw []byte
}

// Raw returns the audit Event JSON of the event the last successful Next returned
// (for an Event Hub record, the Event inside it). It is valid until the next call
// of Next; `kubetrail ingest` forwards it to the server's audit webhook endpoint so
// that files and the webhook take one path.
func (r *Reader) Raw() []byte { return r.raw }

// listItem is one element of an EventList's items or an Event Hub payload's records.
type listItem struct {
	span
	line    int
	context string // "items[3]" or "records[3]"
	hub     bool   // an Event Hub record rather than an Event
}

// NewReader returns a Reader of the audit log in r. Events get the given cluster
// name.
func NewReader(r io.Reader, cluster string) *Reader {
	return &Reader{cluster: cluster, in: bufio.NewReaderSize(r, 64<<10), line: 1, col0: true}
}

// Next returns the next event, or io.EOF after the last.
func (r *Reader) Next() (kubetrail.Event, error) {
	for {
		if len(r.pending) > 0 {
			item := r.pending[0]
			r.pending = r.pending[1:]
			return r.listElement(item)
		}
		if r.err != nil {
			return kubetrail.Event{}, r.err
		}
		raw, line, err := r.nextValue()
		if err != nil {
			return kubetrail.Event{}, err
		}
		ev, isList, err := r.decodeTop(raw, line)
		if err != nil {
			return kubetrail.Event{}, at(err, lineWhere(line))
		}
		if !isList {
			return ev, nil
		}
		// An EventList or Event Hub payload: its elements are in r.pending now
		// (perhaps none, and then we go on to the next record).
	}
}

// decodeTop decodes one top-level JSON value. For a list it queues the elements
// and reports isList.
func (r *Reader) decodeTop(raw []byte, line int) (ev kubetrail.Event, isList bool, err error) {
	if raw[0] == '[' {
		return ev, false, kubetrail.Errorf(kubetrail.EINVALID, "a JSON list: want JSON objects (an audit Event, an EventList, or an Event Hub {\"records\":[...]} payload)")
	}
	rec, typeErr, err := parse(raw, line)
	if err != nil {
		return ev, false, err
	}
	kind := ""
	if !isAbsent(rec.Kind) {
		k, ok := jsonString(rec.Kind)
		if !ok || (k != "Event" && k != "EventList") {
			return ev, false, kubetrail.Errorf(kubetrail.EINVALID, "unknown kind %s (want Event or EventList)", excerpt(rec.Kind))
		}
		kind = k
	}
	if !isAbsent(rec.APIVersion) {
		if _, err := checkVersion(rec.APIVersion); err != nil {
			return ev, false, err
		}
	}
	switch {
	case kind == "EventList":
		return ev, true, r.queue(raw, line, "items", false)
	case kind == "Event":
		r.raw = raw
		ev, err = toEvent(rec, typeErr, raw, r.cluster)
		return ev, false, err
	case !isAbsent(rec.APIVersion):
		// An audit apiVersion without a kind: an Event with its kind left out.
		r.raw = raw
		ev, err = toEvent(rec, typeErr, raw, r.cluster)
		return ev, false, err
	case bool(rec.Records):
		return ev, true, r.queue(raw, line, "records", true)
	case rec.looksLikeEvent(typeErr):
		r.raw = raw
		ev, err = toEvent(rec, typeErr, raw, r.cluster)
		return ev, false, err
	case len(rec.Properties) > 0:
		if len(raw) > MaxEventSize {
			return ev, false, kubetrail.Errorf(kubetrail.ETOOLARGE, "Event Hub record is %d bytes; the limit is %d (1 MiB)", len(raw), MaxEventSize)
		}
		ev, r.raw, err = decodeHubRecord(rec, r.cluster)
		return ev, false, err
	}
	return ev, false, notAnEvent(raw)
}

// queue splits a list (the items of an EventList, the records of an Event Hub
// payload) into elements to decode one by one.
func (r *Reader) queue(raw []byte, line int, key string, hub bool) error {
	spans, err := listSpans(raw, key)
	if err != nil {
		return at(err, lineWhere(line))
	}
	r.list = raw // the elements point into it; nextValue leaves it alone while any are pending
	r.pending = r.pending[:0]
	counted := 0 // lines are counted on from the previous element, not from the start each time
	for i, s := range spans {
		line += bytes.Count(raw[counted:s.start], []byte{'\n'})
		counted = s.start
		r.pending = append(r.pending, listItem{span: s, line: line, context: fmt.Sprintf("%s[%d]", key, i), hub: hub})
	}
	return nil
}

// listElement decodes one queued element.
func (r *Reader) listElement(item listItem) (kubetrail.Event, error) {
	raw := r.list[item.start:item.end]
	where := lineWhere(item.line)
	if len(raw) > MaxEventSize {
		return kubetrail.Event{}, kubetrail.ErrorAt(kubetrail.ETOOLARGE, where, "%s: audit event is %d bytes; the limit is %d (1 MiB)", item.context, len(raw), MaxEventSize)
	}
	if !item.hub {
		r.raw = raw
		ev, err := decodeEvent(raw, item.line, item.context, r.cluster)
		return ev, at(err, where)
	}
	rec, _, err := parse(raw, item.line)
	if err != nil {
		return kubetrail.Event{}, at(prefix(err, item.context), where)
	}
	ev, inner, err := decodeHubRecord(rec, r.cluster)
	r.raw = inner
	return ev, at(prefix(err, item.context), where)
}

// maxDepth is encoding/json's own limit of nesting, reached sooner here so that
// the framing's stack stays small.
const maxDepth = 10000

func lineWhere(line int) string { return fmt.Sprintf("line %d", line) }

// nextValue returns the bytes of the next top-level JSON value and the line it
// starts on. It only finds where the value ends (matching braces and brackets
// outside strings); decoding is left to encoding/json. Framing errors are
// returned as *kubetrail.Error after moving past the broken record.
func (r *Reader) nextValue() ([]byte, int, error) {
	// Skip blanks and byte order marks between records.
	var first byte
	for {
		c, err := r.readByte()
		if err != nil {
			return nil, 0, err
		}
		if isSpace(c) {
			continue
		}
		if c == 0xEF {
			if p, _ := r.in.Peek(2); len(p) == 2 && p[0] == 0xBB && p[1] == 0xBF {
				r.in.Discard(2)
				continue
			}
		}
		first = c
		break
	}
	start := r.line
	if first != '{' && first != '[' {
		return nil, start, r.garbage(first, start)
	}

	if cap(r.buf) > 4*MaxEventSize {
		r.buf = nil // after a huge list, do not keep its memory for the rest of the log
	}
	r.buf = append(r.buf[:0], first)
	r.list, r.pending = nil, nil
	open := []byte{first} // the braces and brackets not closed yet
	last := first         // the last byte outside strings that is not blank
	inString, escaped, tooLarge := false, false, false
	for len(open) > 0 {
		// A '{' starting a line where JSON cannot have one (not after ':', '[' or
		// a ',' in a list): the record was cut short (a crash mid-write, and then
		// the log went on) and a new one begins. Valid JSON is never read so.
		if r.col0 && !(last == ':' || last == '[' || last == ',' && open[len(open)-1] == '[') {
			if p, _ := r.in.Peek(1); len(p) == 1 && p[0] == '{' {
				return nil, start, kubetrail.ErrorAt(kubetrail.EINVALID, lineWhere(start),
					"malformed JSON: the record is cut short: a new one starts at line %d before it is complete", r.line)
			}
		}
		c, err := r.readByte()
		if err == io.EOF {
			return nil, start, kubetrail.ErrorAt(kubetrail.EINVALID, lineWhere(start),
				"malformed JSON: the input ends before the record is complete")
		} else if err != nil {
			return nil, start, err
		}
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString && c == '\n':
			// JSON strings cannot hold a raw line break, so the record is broken
			// here; what follows up to the next record is its debris.
			line := r.line - 1
			r.resync()
			return nil, start, kubetrail.ErrorAt(kubetrail.EINVALID, lineWhere(start),
				"malformed JSON: a string is not closed at the end of line %d; skipped to the next line starting with '{'", line)
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if len(open) == maxDepth {
				r.resync()
				return nil, start, kubetrail.ErrorAt(kubetrail.EINVALID, lineWhere(start),
					"malformed JSON: nested deeper than %d levels; skipped to the next line starting with '{'", maxDepth)
			}
			open = append(open, c)
		case c == '}' || c == ']':
			open = open[:len(open)-1] // a mismatched pair is left for encoding/json to report
		}
		if !inString && !isSpace(c) {
			last = c
		}
		if len(r.buf) < MaxListSize {
			r.buf = append(r.buf, c)
		} else {
			tooLarge = true // keep reading to the end of the record, without keeping it
		}
	}
	if tooLarge {
		return nil, start, kubetrail.ErrorAt(kubetrail.ETOOLARGE, lineWhere(start),
			"record is larger than %d bytes (64 MiB), the limit for a list of events; one event may have at most %d (1 MiB)", MaxListSize, MaxEventSize)
	}
	return r.buf, start, nil
}

// garbage refuses text that is not JSON, from first (already read) up to the
// next line that starts with '{', so that a run of such lines (a CSV file, a
// text log) is one error rather than one per line.
func (r *Reader) garbage(first byte, start int) error {
	preview := []byte{first}
	for r.line == start && len(preview) < 41 {
		p, _ := r.in.Peek(1)
		if len(p) == 0 || p[0] == '\n' {
			break
		}
		c, _ := r.readByte()
		preview = append(preview, c)
	}
	r.resync()
	return kubetrail.ErrorAt(kubetrail.EINVALID, lineWhere(start),
		"not JSON: the line starts with %s; want audit events as JSON objects (skipped to the next line starting with '{')", quotePrefix(bytes.TrimRight(preview, "\r")))
}

// resync skips to the start of the next line that begins with '{', or to the end.
func (r *Reader) resync() {
	for {
		if r.col0 {
			if p, _ := r.in.Peek(1); len(p) == 1 && p[0] == '{' {
				return
			}
		}
		if _, err := r.readByte(); err != nil {
			return
		}
	}
}

// readByte reads one byte, counting lines. A read error other than io.EOF is kept
// and returned by every later call to Next.
func (r *Reader) readByte() (byte, error) {
	c, err := r.in.ReadByte()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			r.err = fmt.Errorf("reading audit log at line %d: %w", r.line, err)
			return 0, r.err
		}
		return 0, io.EOF
	}
	r.col0 = c == '\n'
	if r.col0 {
		r.line++
	}
	return c, nil
}
