// Package spool is the node agent's outbox: a bounded, durable, ordered queue of
// encoded batches on local disk, and a Shipper that drains it to the server.
//
// The agent appends every batch to the spool before trying to send it, so that
// neither a server outage nor an agent restart loses events, and the kernel-side
// reader never waits for the network: it waits at most for one local write and
// fsync. (Append does block for that long; the agent decouples its ring-buffer
// reader from Append with a small in-memory queue of its own.)
//
// # Delivery contract
//
// Delivery is at least once, in order. A record stays in the spool until Ack
// removes it after the server has stored it durably. If the agent dies after the
// server stored a batch but before Ack reached the disk, the batch is sent again
// after the restart; the server deduplicates by (stream, seq), so a replay is
// harmless, while losing the batch would not be. Records are never reordered,
// and acknowledged records are never replayed.
//
// # Bounds
//
// The spool holds at most maxBytes of records, counting each record's 8-byte
// header. When an Append would go beyond that, the oldest records are dropped
// first and counted (Dropped): during a long outage the newest activity is the
// most useful, and the agent must keep running rather than fill the node's disk.
// Disk use can exceed maxBytes by the consumed prefix of the oldest segment, at
// most one segment (maxBytes/8, no more than 8 MiB).
//
// # Layout
//
// dir holds segment files named by a zero-padded sequence number
// (00000000000000000001.seg, ...), appended to and never rewritten, each a run of
// records framed as [uint32 length][uint32 CRC-32C][payload]; an "ack" file with
// the position of the oldest pending record (see ackfile.go); and a "lock" file.
// A segment is deleted once all its records are acknowledged or dropped. On Open,
// a record cut short by a crash, or any bytes after the last record that checks
// out, are truncated away and never returned.
package spool

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	// maxSegmentSize bounds a segment file. Segments are the unit of deletion, so
	// smaller segments free disk sooner, but each rotation costs a file creation
	// and a directory fsync; 8 MiB is a hundred or so typical batches.
	maxSegmentSize = 8 << 20
	// minSegmentSize keeps tiny spools (tests, mostly) from rotating on every record.
	minSegmentSize = 4 << 10
	segmentExt     = ".seg"
)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("spool: closed")
	// ErrTooLarge is returned by Append for a record that could never fit.
	ErrTooLarge = errors.New("spool: record larger than the spool")
	// ErrLocked is returned by Open when another process has the spool open.
	ErrLocked = errors.New("spool: locked")
)

// segmentSize picks the segment size for a spool of maxBytes: an eighth of it, so
// that the consumed but not yet deletable head segment adds at most 1/8 to the
// disk use, within [minSegmentSize, maxSegmentSize].
func segmentSize(maxBytes int64) int64 {
	return min(max(maxBytes/8, minSegmentSize), maxSegmentSize)
}

type segment struct {
	seq   uint64
	size  int64  // bytes of valid records in the file
	first uint64 // logical number of its first pending record
	f     *os.File
}

// cursor is a place in the queue: segs[i] at byte off, where the record with
// logical number id starts. Logical numbers live in memory only; they tell
// records apart when the producer drops the record the consumer is sending.
type cursor struct {
	i   int
	off int64
	id  uint64
}

// Spool is a bounded, durable, ordered queue of byte payloads in a directory.
// It is safe for concurrent use; the intended use is one producer calling Append
// and one consumer calling Peek and Ack (usually through a Shipper).
type Spool struct {
	dir      string
	maxBytes int64
	segSize  int64
	ready    chan struct{}

	mu      sync.Mutex
	closed  bool
	segs    []*segment // oldest first; the last one is appended to
	headOff int64      // where the oldest pending record starts in segs[0]
	headID  uint64     // its logical number
	nextID  uint64     // logical number of the next record appended
	total   int64      // sum of segs[i].size
	nextSeq uint64     // sequence number of the next segment file
	peeked  bool       // Peek returned record peekID and Ack has not been called since
	peekID  uint64
	dropped struct{ records, bytes int64 }
	ack     *ackFile
	lock    *os.File
}

// Open opens the spool in dir, creating dir if needed, and recovers what an
// earlier process left there: pending records in order, minus a torn tail. If
// they exceed maxBytes (the bound was lowered), the oldest are dropped.
func Open(dir string, maxBytes int64) (*Spool, error) {
	return open(dir, maxBytes, segmentSize(maxBytes))
}

func open(dir string, maxBytes, segSize int64) (_ *Spool, err error) {
	if maxBytes <= headerSize {
		return nil, fmt.Errorf("spool: size limit of %d bytes leaves no room for a record", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segSize: segSize, ready: make(chan struct{}, 1), nextSeq: 1}
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.closeFiles()
			err = fmt.Errorf("spool: open %s: %w", dir, err)
		}
	}()
	if err := s.recover(); err != nil {
		return nil, err
	}
	return s, nil
}

// recover rebuilds the queue from the files in s.dir.
func (s *Spool) recover() error {
	ack, pos, haveAck, created, err := openAckFile(s.dir)
	if err != nil {
		return err
	}
	s.ack = ack
	if created {
		// Make the new ack file's directory entry durable, or a crash could lose the
		// file and with it every acknowledgement.
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	seqs, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	if haveAck {
		s.nextSeq = max(s.nextSeq, pos.seg+1)
	}
	for _, seq := range seqs {
		s.nextSeq = max(s.nextSeq, seq+1)
		if haveAck && seq < pos.seg {
			// Wholly acknowledged: the process stopped between storing the ack and
			// deleting the segment.
			if err := os.Remove(s.path(seq)); err != nil {
				return err
			}
			continue
		}
		f, err := os.OpenFile(s.path(seq), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		seg := &segment{seq: seq, first: s.nextID, f: f}
		s.segs = append(s.segs, seg)
		st, err := f.Stat()
		if err != nil {
			return err
		}
		var start int64
		if haveAck && seq == pos.seg {
			// An ack beyond the end cannot come from this package (only synced records
			// are acked), but a head past the data would make the sizes negative.
			start = min(pos.off, st.Size())
		}
		res, err := scanSegment(f, st.Size(), start)
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if res.end < st.Size() {
			// A torn or garbled tail: cut it off before anything is appended after it,
			// or the records appended next would be unreachable behind it.
			if err := f.Truncate(res.end); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
		}
		seg.size = res.end
		s.total += res.end
		if len(s.segs) == 1 {
			s.headOff = start
		}
		s.nextID += uint64(res.records)
	}
	// Drop segments with nothing pending, except the last, which is appended to.
	// Their records have all been consumed (or were never valid), and keeping them
	// would break the invariant that the head segment has a pending record unless
	// it is the last.
	for i := 0; i < len(s.segs)-1; {
		seg := s.segs[i]
		start := int64(0)
		if i == 0 {
			start = s.headOff
		}
		if seg.size > start {
			i++
			continue
		}
		if i == 0 {
			s.headOff = 0
		}
		seg.f.Close()
		s.total -= seg.size
		s.segs = slices.Delete(s.segs, i, i+1)
		if err := os.Remove(s.path(seg.seq)); err != nil {
			return err
		}
	}
	if len(s.segs) == 0 {
		seg, err := s.newSegment()
		if err != nil {
			return err
		}
		s.segs = append(s.segs, seg)
	}
	// Only the head and the tail need a file open.
	for i := 1; i < len(s.segs)-1; i++ {
		s.segs[i].f.Close()
		s.segs[i].f = nil
	}
	// Store the recovered head even when nothing changed: Append and Ack rely on the
	// stored position always meaning the in-memory head (see moveHead), and recovery
	// may have moved it (a segment deleted, a tail truncated short of the old ack).
	c := s.head()
	var dropped bool
	for s.pendingBytes(c) > s.maxBytes {
		if c, _, err = s.skip(c); err != nil {
			return err
		}
		dropped = true
	}
	if dropped {
		return s.dropTo(c)
	}
	return s.moveHead(c)
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segmentExt))
}

// listSegments returns the sequence numbers of the segment files in dir, in order.
// Other files are left alone.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentExt)
		if !ok || len(name) != 20 || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// newSegment creates the next segment file, durably.
func (s *Spool) newSegment() (*segment, error) {
	path := s.path(s.nextSeq)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	// Without this a crash could lose the file's directory entry, and with it the
	// records whose Append already returned.
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	seg := &segment{seq: s.nextSeq, first: s.nextID, f: f}
	s.nextSeq++
	return seg, nil
}

// Append adds payload at the end of the spool and returns once it is on disk
// (fsynced). When the spool would then hold more than its limit, the oldest
// records are dropped first (see Dropped). The caller may reuse payload after
// Append returns. An error means the record may or may not be stored; appending it
// again can only produce a duplicate, which the server removes.
func (s *Spool) Append(payload []byte) error {
	framed := headerSize + int64(len(payload))
	if framed > s.maxBytes || uint64(len(payload)) > math.MaxUint32 {
		return fmt.Errorf("%w: %d bytes with its header, the limit is %d", ErrTooLarge, framed, s.maxBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.pendingBytes(s.head())+framed > s.maxBytes {
		c := s.head()
		for s.pendingBytes(c)+framed > s.maxBytes {
			var err error
			if c, _, err = s.skip(c); err != nil {
				return err
			}
		}
		// The drop is stored before the new record is written: a crash in between
		// then loses only what was being dropped anyway, and never leaves the spool
		// over its limit.
		if err := s.dropTo(c); err != nil {
			return err
		}
	}
	tail := s.segs[len(s.segs)-1]
	if tail.size > 0 && tail.size+framed > s.segSize {
		if err := s.rotate(); err != nil {
			return fmt.Errorf("spool: new segment: %w", err)
		}
		tail = s.segs[len(s.segs)-1]
	}
	if err := s.write(tail, payload); err != nil {
		return fmt.Errorf("spool: append: %w", err)
	}
	tail.size += framed
	s.total += framed
	s.nextID++
	// Wake the consumer if it waits; the buffered slot keeps a wake-up sent while
	// it was busy, so it cannot be lost between its Peek and its wait.
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return nil
}

// write puts one record at the end of tail, durably. On failure it cuts the file
// back, so that a half-written record neither lingers before the next one nor,
// after a crash, turns up as one that was reported failed.
func (s *Spool) write(tail *segment, payload []byte) error {
	h := header(payload)
	// Two writes instead of one copy into a buffer: no buffer as large as the
	// largest record stays allocated, and a crash between them is just a torn
	// record.
	_, err := tail.f.WriteAt(h[:], tail.size)
	if err == nil {
		_, err = tail.f.WriteAt(payload, tail.size+headerSize)
	}
	if err == nil {
		err = tail.f.Sync()
	}
	if err != nil {
		// If this fails too, the next record is written over the leftovers, and
		// recovery stops at whatever of them does not check out.
		_ = tail.f.Truncate(tail.size)
	}
	return err
}

// rotate starts a new tail segment.
func (s *Spool) rotate() error {
	seg, err := s.newSegment()
	if err != nil {
		return err
	}
	if old := s.segs[len(s.segs)-1]; old != s.segs[0] {
		// Neither head nor tail any more; its data was synced by every Append.
		old.f.Close()
		old.f = nil
	}
	s.segs = append(s.segs, seg)
	// The old tail may have been the head with nothing pending: delete it now. The
	// stored ack already points at its end, which means the start of the new one.
	if c := s.normalize(s.head()); c.i > 0 {
		s.commit(c)
	}
	return nil
}

// Peek returns the oldest pending record without removing it, or io.EOF when
// there is none. The payload is the caller's. A record that fails its checksum
// (the disk changed under us after Open) is not returned: it and the rest of its
// segment, which can no longer be framed, are dropped and counted in Dropped.
func (s *Spool) Peek() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	for s.headID < s.nextID {
		seg := s.segs[0]
		f, err := s.file(seg)
		if err != nil {
			return nil, err
		}
		p, err := readRecord(f, s.headOff, seg.size)
		if err == errCorrupt {
			c := s.normalize(cursor{i: 0, off: seg.size, id: s.endID(0)})
			if err := s.dropTo(c); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("spool: read %s: %w", f.Name(), err)
		}
		s.peeked, s.peekID = true, s.headID
		return p, nil
	}
	return nil, io.EOF
}

// Ack removes the oldest pending record, durably: once Ack returns, a restart will
// not replay it. It returns io.EOF if there is nothing to remove.
//
// If the record that the last Peek returned was dropped in the meantime to make
// room (Append with a full spool), Ack removes nothing: it acknowledges the record
// the consumer actually sent, never the one that moved to the front since.
func (s *Spool) Ack() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.peeked && s.peekID < s.headID {
		s.peeked = false
		return nil
	}
	if s.headID == s.nextID {
		return io.EOF
	}
	c, corrupt, err := s.skip(s.head())
	if err != nil {
		return err
	}
	if corrupt {
		// Only possible without a Peek first; the unreadable rest of the segment goes.
		err = s.dropTo(c)
	} else {
		err = s.moveHead(c)
	}
	if err == nil {
		s.peeked = false
	}
	return err
}

// Ready returns a channel that receives a value after Append adds a record, and
// is closed by Close. It is meant for the one consumer, to wait on after Peek
// returned io.EOF; a value may be stale (the record already consumed), so the
// consumer must Peek again rather than assume a record is there.
func (s *Spool) Ready() <-chan struct{} { return s.ready }

// Len returns the number of pending records.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.nextID - s.headID)
}

// Bytes returns the size of the pending records, headers included: the figure
// bounded by maxBytes.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingBytes(s.head())
}

// Dropped returns how many records, and how many bytes of them (headers
// included), were dropped since Open, to stay within the limit or because they
// could not be read back. A record dropped while the consumer was sending it
// counts too, although that send may still succeed.
func (s *Spool) Dropped() (records int64, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped.records, s.dropped.bytes
}

// Close releases the spool's files and its lock, and closes the Ready channel.
// Everything appended is already on disk; Close adds no durability.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.ready)
	return s.closeFiles()
}

func (s *Spool) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		if seg.f != nil {
			errs = append(errs, seg.f.Close())
			seg.f = nil
		}
	}
	if s.ack != nil {
		errs = append(errs, s.ack.close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// file returns seg's open file, opening it for reading when it becomes the head.
func (s *Spool) file(seg *segment) (*os.File, error) {
	if seg.f == nil {
		f, err := os.Open(s.path(seg.seq))
		if err != nil {
			return nil, err
		}
		seg.f = f
	}
	return seg.f, nil
}

func (s *Spool) head() cursor { return cursor{i: 0, off: s.headOff, id: s.headID} }

// endID is the logical number one past the last record of segs[i].
func (s *Spool) endID(i int) uint64 {
	if i+1 < len(s.segs) {
		return s.segs[i+1].first
	}
	return s.nextID
}

// pendingBytes is the size of the records from c to the end.
func (s *Spool) pendingBytes(c cursor) int64 {
	n := s.total - c.off
	for _, seg := range s.segs[:c.i] {
		n -= seg.size
	}
	return n
}

// normalize moves c off the end of a segment to the start of the next, so that a
// cursor with records after it always points at one.
func (s *Spool) normalize(c cursor) cursor {
	for c.off >= s.segs[c.i].size && c.i < len(s.segs)-1 {
		c.i++
		c = cursor{i: c.i, off: 0, id: s.segs[c.i].first}
	}
	return c
}

// skip returns the cursor after the record at c, reading only its header. A
// header that cannot be right condemns the rest of the segment, which corrupt
// reports: without a trustworthy length the records after it cannot be found.
func (s *Spool) skip(c cursor) (_ cursor, corrupt bool, err error) {
	if c.id >= s.nextID {
		return c, false, errors.New("spool: internal error: skip past the end")
	}
	seg := s.segs[c.i]
	f, err := s.file(seg)
	if err != nil {
		return c, false, err
	}
	framed, _, err := readHeader(f, c.off, seg.size)
	switch {
	case err == errCorrupt:
		c.off, c.id, corrupt = seg.size, s.endID(c.i), true
	case err != nil:
		return c, false, fmt.Errorf("spool: read %s: %w", f.Name(), err)
	default:
		c.off += framed
		c.id++
	}
	return s.normalize(c), corrupt, nil
}

// dropTo moves the head to c, counting the records passed as dropped.
func (s *Spool) dropTo(c cursor) error {
	records, bytes := int64(c.id-s.headID), s.pendingBytes(s.head())-s.pendingBytes(c)
	if err := s.moveHead(c); err != nil {
		return err
	}
	s.dropped.records += records
	s.dropped.bytes += bytes
	return nil
}

// moveHead stores c as the oldest pending record, then makes it so in memory and
// deletes the segments before it.
//
// The stored position is always the in-memory head, or an equivalent: the end of
// a segment that rotate or commit deleted without storing, which recovery reads as
// the start of the next segment. Storing before changing memory means a failed
// store changes nothing: the consumer can retry Ack without removing a second
// record.
func (s *Spool) moveHead(c cursor) error {
	if err := s.ack.store(position{seg: s.segs[c.i].seq, off: c.off}); err != nil {
		return fmt.Errorf("spool: store ack: %w", err)
	}
	s.commit(c)
	return nil
}

// commit makes c the head and deletes the segments before it. A segment that fails
// to be deleted is deleted by the next Open: it precedes the stored position.
func (s *Spool) commit(c cursor) {
	for _, seg := range s.segs[:c.i] {
		if seg.f != nil {
			seg.f.Close()
		}
		_ = os.Remove(s.path(seg.seq))
		s.total -= seg.size
	}
	clear(s.segs[:c.i])
	s.segs = s.segs[c.i:]
	s.headOff, s.headID = c.off, c.id
}
