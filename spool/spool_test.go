package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// rec is the i-th test payload: its number first, then a length that varies so
// records straddle segment boundaries at different offsets.
func rec(i int) []byte {
	return []byte(fmt.Sprintf("record %06d %s", i, strings.Repeat(string(rune('a'+i%26)), i*7%300)))
}

func framed(p []byte) int64 { return headerSize + int64(len(p)) }

func openT(t testing.TB, dir string, maxBytes, segSize int64) *Spool {
	t.Helper()
	s, err := open(dir, maxBytes, segSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendT(t testing.TB, s *Spool, p []byte) {
	t.Helper()
	if err := s.Append(p); err != nil {
		t.Fatal(err)
	}
}

// expectNext checks that the oldest record is want, then acks it.
func expectNext(t testing.TB, s *Spool, want []byte) {
	t.Helper()
	got, err := s.Peek()
	if err != nil {
		t.Fatalf("Peek: %v, want %q", err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Peek = %.40q, want %.40q", got, want)
	}
	if err := s.Ack(); err != nil {
		t.Fatal(err)
	}
}

func expectEmpty(t testing.TB, s *Spool) {
	t.Helper()
	if p, err := s.Peek(); err != io.EOF {
		t.Fatalf("Peek = %.40q, %v; want io.EOF", p, err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("Len, Bytes = %d, %d; want 0, 0", s.Len(), s.Bytes())
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestOrder appends and acks across many small segments and several restarts,
// checking order, Len and Bytes all along, and that acked records never return.
func TestOrder(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 1<<20, 4<<10)
	next, pending := 0, int64(0) // next record expected out; bytes pending
	check := func() {
		t.Helper()
		if s.Bytes() != pending {
			t.Fatalf("Bytes = %d, want %d", s.Bytes(), pending)
		}
	}
	const n = 1000
	for i := range n {
		appendT(t, s, rec(i))
		pending += framed(rec(i))
		if i%3 == 2 {
			expectNext(t, s, rec(next))
			pending -= framed(rec(next))
			next++
		}
		check()
		if i%250 == 249 {
			s.Close()
			s = openT(t, dir, 1<<20, 4<<10)
			check()
		}
	}
	if s.Len() != n-next {
		t.Fatalf("Len = %d, want %d", s.Len(), n-next)
	}
	if len(segmentFiles(t, dir)) < 10 {
		t.Fatalf("only %d segment files: the test should span many", len(segmentFiles(t, dir)))
	}
	for ; next < n; next++ {
		expectNext(t, s, rec(next))
		pending -= framed(rec(next))
		check()
		if next%200 == 0 {
			s.Close()
			s = openT(t, dir, 1<<20, 4<<10)
		}
	}
	expectEmpty(t, s)
	s.Close()
	s = openT(t, dir, 1<<20, 4<<10)
	expectEmpty(t, s)
	// Consumed segments are deleted; the tail stays to be appended to.
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Fatalf("segment files left: %v", files)
	}
	appendT(t, s, []byte("after"))
	expectNext(t, s, []byte("after"))
}

func TestEmptyAndSmall(t *testing.T) {
	s := openT(t, t.TempDir(), 1000, 1<<20)
	expectEmpty(t, s)
	if err := s.Ack(); err != io.EOF {
		t.Fatalf("Ack on empty = %v, want io.EOF", err)
	}
	appendT(t, s, nil) // an empty payload is a record like any other
	appendT(t, s, []byte("x"))
	expectNext(t, s, []byte{})
	expectNext(t, s, []byte("x"))
	expectEmpty(t, s)
}

// TestTornTail cuts the last record short at every possible byte, as a crash in
// the middle of Append would, and checks that recovery returns exactly the records
// before it and that appending afterwards works.
func TestTornTail(t *testing.T) {
	base := t.TempDir()
	const keep = 4
	for cut := 1; ; cut++ {
		dir := filepath.Join(base, fmt.Sprint(cut))
		s := openT(t, dir, 1<<20, 1<<20)
		for i := range keep + 1 {
			appendT(t, s, rec(i+20))
		}
		s.Close()
		seg := segmentFiles(t, dir)[0]
		size := fileSize(t, seg)
		last := size - framed(rec(keep+20))
		if last+int64(cut) >= size {
			break
		}
		if err := os.Truncate(seg, last+int64(cut)); err != nil {
			t.Fatal(err)
		}
		s = openT(t, dir, 1<<20, 1<<20)
		if s.Len() != keep {
			t.Fatalf("cut %d: Len = %d, want %d", cut, s.Len(), keep)
		}
		if got := fileSize(t, seg); got != last {
			t.Fatalf("cut %d: segment is %d bytes after recovery, want %d", cut, got, last)
		}
		appendT(t, s, []byte("after"))
		s.Close()
		s = openT(t, dir, 1<<20, 1<<20)
		for i := range keep {
			expectNext(t, s, rec(i+20))
		}
		expectNext(t, s, []byte("after"))
		expectEmpty(t, s)
		s.Close()
	}
}

// TestGarbageTail appends junk to the last segment, as a crash might leave (or a
// file system that shows unwritten blocks as zeros), and checks that none of it is
// returned.
func TestGarbageTail(t *testing.T) {
	valid := rec(3)
	h := header(valid)
	wrongCRC := append(append([]byte{}, h[:]...), valid...)
	wrongCRC[headerSize+2] ^= 1
	hugeLen := binary.LittleEndian.AppendUint32(nil, 1<<30)
	hugeLen = binary.LittleEndian.AppendUint32(hugeLen, 0)
	rnd := make([]byte, 10000)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(rnd)
	cases := map[string][]byte{
		"zeros":       make([]byte, 4096),
		"random":      rnd,
		"huge length": append(hugeLen, "tail"...),
		"bad crc":     wrongCRC,
		"header only": h[:],
		"short":       {1, 2, 3},
	}
	for name, junk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, 1<<20, 1<<20)
			for i := range 3 {
				appendT(t, s, rec(i))
			}
			s.Close()
			seg := segmentFiles(t, dir)[0]
			size := fileSize(t, seg)
			appendBytes(t, seg, junk)

			s = openT(t, dir, 1<<20, 1<<20)
			if s.Len() != 3 {
				t.Fatalf("Len = %d, want 3", s.Len())
			}
			if got := fileSize(t, seg); got != size {
				t.Fatalf("segment is %d bytes after recovery, want %d", got, size)
			}
			appendT(t, s, rec(3))
			s.Close()
			s = openT(t, dir, 1<<20, 1<<20)
			for i := range 4 {
				expectNext(t, s, rec(i))
			}
			expectEmpty(t, s)
		})
	}
}

// TestCorruptOlderSegment flips a byte inside an older segment, which no crash
// does but a failing disk can: the damaged record and the rest of its segment are
// lost (they can no longer be framed), everything else is returned, in order.
func TestCorruptOlderSegment(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 1<<20, 1<<10)
	const n = 60
	for i := range n {
		appendT(t, s, rec(i))
	}
	s.Close()
	files := segmentFiles(t, dir)
	if len(files) < 4 {
		t.Fatalf("%d segments, want at least 4", len(files))
	}
	// Damage the second record of the second segment.
	data, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	second := headerSize + int64(binary.LittleEndian.Uint32(data))
	data[second+headerSize+1] ^= 0x40
	if err := os.WriteFile(files[1], data, 0o600); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, 1<<20, 1<<10)
	var got []int
	for {
		p, err := s.Peek()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(string(p), "record %d", &i); err != nil || !bytes.Equal(p, rec(i)) {
			t.Fatalf("returned a record that was never appended: %.40q", p)
		}
		got = append(got, i)
		s.Ack()
	}
	// Expect: all of segment 1, the first record of segment 2, all of segments 3+.
	for k := 1; k < len(got); k++ {
		if got[k] <= got[k-1] {
			t.Fatalf("out of order: %v", got)
		}
	}
	lost := n - len(got)
	if lost < 1 || got[len(got)-1] != n-1 {
		t.Fatalf("got %d records, last %d: %v", len(got), got[len(got)-1], got)
	}
}

// TestCorruptAfterOpen damages the head record while the spool is open: Peek
// must not return it, must drop the rest of its segment, count that, and go on.
func TestCorruptAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 1<<20, 1<<10)
	for i := range 30 {
		appendT(t, s, rec(i))
	}
	files := segmentFiles(t, dir)
	first, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	inFirst := 0
	for off := 0; off < len(first); inFirst++ {
		off += headerSize + int(binary.LittleEndian.Uint32(first[off:]))
	}
	f, err := os.OpenFile(files[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{first[headerSize] ^ 0xff}, headerSize)
	f.Close()

	expectNext(t, s, rec(inFirst))
	if n, b := s.Dropped(); n != int64(inFirst) || b != int64(len(first)) {
		t.Fatalf("Dropped = %d, %d; want %d, %d", n, b, inFirst, len(first))
	}
	s.Close()
	s = openT(t, dir, 1<<20, 1<<10)
	for i := inFirst + 1; i < 30; i++ {
		expectNext(t, s, rec(i))
	}
	expectEmpty(t, s)
}

// TestAckFile damages one slot of the ack file at a time: the other slot holds the
// previous position, so at most the last acked record comes back (at least once,
// never lost). Without an ack file at all, whatever segments remain are replayed.
func TestAckFile(t *testing.T) {
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		s := openT(t, dir, 1<<20, 1<<20)
		for i := range 10 {
			appendT(t, s, rec(i))
		}
		for i := range 3 {
			expectNext(t, s, rec(i))
		}
		s.Close()
		return dir
	}
	slotGen := func(t *testing.T, dir string, slot int) uint64 {
		data, err := os.ReadFile(filepath.Join(dir, ackFileName))
		if err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(data[slot*ackSlotSize:])
	}
	damage := func(t *testing.T, dir string, slot int) {
		f, err := os.OpenFile(filepath.Join(dir, ackFileName), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{0xde, 0xad}, int64(slot*ackSlotSize+17))
		f.Close()
	}
	for _, newest := range []bool{false, true} {
		t.Run(fmt.Sprintf("newest=%v", newest), func(t *testing.T) {
			dir := setup(t)
			slot := 0
			if (slotGen(t, dir, 1) > slotGen(t, dir, 0)) == newest {
				slot = 1
			}
			damage(t, dir, slot)
			s := openT(t, dir, 1<<20, 1<<20)
			from := 3
			if newest {
				from = 2 // the previous position: one replay
			}
			for i := from; i < 10; i++ {
				expectNext(t, s, rec(i))
			}
			expectEmpty(t, s)
		})
	}
	t.Run("missing", func(t *testing.T) {
		dir := setup(t)
		os.Remove(filepath.Join(dir, ackFileName))
		s := openT(t, dir, 1<<20, 1<<20)
		for i := range 10 {
			expectNext(t, s, rec(i))
		}
		expectEmpty(t, s)
	})
}

func payloadN(i, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, uint64(i))
	return p
}

func TestDropOldest(t *testing.T) {
	const size, room = 100, 10
	per := framed(make([]byte, size))
	for _, segSize := range []int64{1 << 20, 3 * per} { // one segment; several
		t.Run(fmt.Sprintf("segment=%d", segSize), func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, room*per, segSize)
			for i := range 25 {
				appendT(t, s, payloadN(i, size))
				if s.Bytes() > room*per {
					t.Fatalf("Bytes = %d, over the limit %d", s.Bytes(), room*per)
				}
				var disk int64
				for _, f := range segmentFiles(t, dir) {
					disk += fileSize(t, f)
				}
				if disk > room*per+max(segSize, room*per/8) {
					t.Fatalf("%d bytes of segments for a limit of %d", disk, room*per)
				}
			}
			if s.Len() != room || s.Bytes() != room*per {
				t.Fatalf("Len, Bytes = %d, %d; want %d, %d", s.Len(), s.Bytes(), room, room*per)
			}
			if n, b := s.Dropped(); n != 15 || b != 15*per {
				t.Fatalf("Dropped = %d, %d; want 15, %d", n, b, 15*per)
			}
			expectNext(t, s, payloadN(15, size))
			s.Close()

			// Reopened with a lower limit: the oldest go at once, and are counted.
			s = openT(t, dir, 5*per, segSize)
			if n, b := s.Dropped(); n != 4 || b != 4*per {
				t.Fatalf("Dropped at Open = %d, %d; want 4, %d", n, b, 4*per)
			}
			for i := 20; i < 25; i++ {
				expectNext(t, s, payloadN(i, size))
			}
			expectEmpty(t, s)
		})
	}
}

// TestDropWhilePeeked drops the record the consumer is sending: its Ack must not
// remove the record that has become the oldest since.
func TestDropWhilePeeked(t *testing.T) {
	per := framed(payloadN(0, 50))
	for _, segSize := range []int64{1 << 20, per} { // head is the tail; head is its own segment
		t.Run(fmt.Sprintf("segment=%d", segSize), func(t *testing.T) {
			s := openT(t, t.TempDir(), 3*per, segSize)
			for i := range 3 {
				appendT(t, s, payloadN(i, 50))
			}
			if p, _ := s.Peek(); !bytes.Equal(p, payloadN(0, 50)) {
				t.Fatal("Peek: wrong record")
			}
			appendT(t, s, payloadN(3, 50)) // drops 0, being sent
			if err := s.Ack(); err != nil {
				t.Fatal(err)
			}
			if s.Len() != 3 {
				t.Fatalf("Len = %d after acking a dropped record, want 3", s.Len())
			}
			if p, _ := s.Peek(); !bytes.Equal(p, payloadN(1, 50)) {
				t.Fatal("Peek: wrong record")
			}
			appendT(t, s, payloadN(4, 50)) // drops 1, being sent
			appendT(t, s, payloadN(5, 50)) // and 2
			s.Ack()
			for i := 3; i < 6; i++ {
				expectNext(t, s, payloadN(i, 50))
			}
			expectEmpty(t, s)
			if n, _ := s.Dropped(); n != 3 {
				t.Fatalf("Dropped = %d, want 3", n)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	s := openT(t, t.TempDir(), 1000, 1<<20)
	appendT(t, s, []byte("small"))
	if err := s.Append(make([]byte, 1000-headerSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of a too-large record = %v, want ErrTooLarge", err)
	}
	if s.Len() != 1 {
		t.Fatalf("a refused record changed the spool: Len = %d", s.Len())
	}
	if n, _ := s.Dropped(); n != 0 {
		t.Fatalf("a refused record dropped %d others", n)
	}
	// One that fills the spool exactly is fine, and takes the whole room.
	appendT(t, s, make([]byte, 1000-headerSize))
	if s.Len() != 1 || s.Bytes() != 1000 {
		t.Fatalf("Len, Bytes = %d, %d; want 1, 1000", s.Len(), s.Bytes())
	}
}

func TestClosedAndLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 1<<20, 1<<20)
	if _, err := Open(dir, 1<<20); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	appendT(t, s, []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]byte("y")); err != ErrClosed {
		t.Fatalf("Append after Close = %v", err)
	}
	if _, err := s.Peek(); err != ErrClosed {
		t.Fatalf("Peek after Close = %v", err)
	}
	if err := s.Ack(); err != ErrClosed {
		t.Fatalf("Ack after Close = %v", err)
	}
	for range s.Ready() { // a pending wake-up, then the close
	}
	s = openT(t, dir, 1<<20, 1<<20)
	expectNext(t, s, []byte("x"))
}

// TestConcurrent runs a producer and a consumer at once (run it with -race).
// Without drops every record arrives in order; with them, those that arrive are in
// order and the rest are counted as dropped.
func TestConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int64
	}{{"roomy", 64 << 20}, {"tight", 16 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), tc.maxBytes, 8<<10)
			const n = 2000
			var wg sync.WaitGroup
			done := make(chan struct{})
			wg.Go(func() {
				defer close(done)
				r := rand.New(rand.NewPCG(1, 2))
				for i := range n {
					if err := s.Append(payloadN(i, 8+r.IntN(2000))); err != nil {
						t.Error(err)
						return
					}
				}
			})
			got, last := 0, -1
			for {
				p, err := s.Peek()
				if err == io.EOF {
					select {
					case <-s.Ready():
						continue
					case <-done:
						if s.Len() > 0 {
							continue
						}
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				i := int(binary.BigEndian.Uint64(p))
				if i <= last {
					t.Fatalf("record %d after %d", i, last)
				}
				if tc.maxBytes > 1<<20 && i != last+1 {
					t.Fatalf("record %d after %d with no drops", i, last)
				}
				last = i
				got++
				if err := s.Ack(); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			dropped, _ := s.Dropped()
			// A record dropped while it was being sent is both received and counted
			// as dropped; what must hold is that every missing record is counted.
			if int64(n-got) > dropped || dropped > n || last != n-1 {
				t.Fatalf("received %d, dropped %d, last %d; appended %d", got, dropped, last, n)
			}
			t.Logf("received %d, dropped %d", got, dropped)
		})
	}
}

// FuzzRecover puts arbitrary bytes after three valid records and checks that Open
// keeps the three, returns nothing that is not a whole valid record of the file,
// and leaves a spool that works.
func FuzzRecover(f *testing.F) {
	h := header([]byte("payload"))
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add(h[:5])
	f.Add(append(h[:], "payl"...))
	f.Add(append(h[:], "payload"...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, junk []byte) {
		dir := t.TempDir()
		s := openT(t, dir, 1<<20, 1<<20)
		for i := range 3 {
			appendT(t, s, rec(i))
		}
		s.Close()
		seg := segmentFiles(t, dir)[0]
		appendBytes(t, seg, junk)

		s = openT(t, dir, 1<<20, 1<<20)
		for i := range 3 {
			expectNext(t, s, rec(i))
		}
		// Whatever else comes back must be exactly the records that junk starts with.
		var rebuilt []byte
		for {
			p, err := s.Peek()
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			h := header(p)
			rebuilt = append(append(rebuilt, h[:]...), p...)
			s.Ack()
		}
		if !bytes.HasPrefix(junk, rebuilt) {
			t.Fatalf("returned records that are not a prefix of the junk")
		}
		appendT(t, s, []byte("after"))
		s.Close()
		s = openT(t, dir, 1<<20, 1<<20)
		expectNext(t, s, []byte("after"))
		expectEmpty(t, s)
	})
}

// BenchmarkAppendPeekAck measures the full cycle of one 64 KiB batch: a durable
// append, reading it back, and a durable ack (two fsyncs in all).
func BenchmarkAppendPeekAck(b *testing.B) {
	s, err := Open(b.TempDir(), 256<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	p := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{}).Read(p)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if err := s.Append(p); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Peek(); err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLeftoverSegment puts back a wholly acked segment, as a crash between
// storing an ack and deleting the segment leaves it: Open deletes it and replays
// none of it.
func TestLeftoverSegment(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 1<<20, 1<<10)
	for i := range 20 {
		appendT(t, s, rec(i))
	}
	first := segmentFiles(t, dir)[0]
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for ; fileExists(first); next++ {
		expectNext(t, s, rec(next))
	}
	s.Close()
	if err := os.WriteFile(first, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, 1<<20, 1<<10)
	if fileExists(first) {
		t.Fatal("acked segment not deleted")
	}
	for i := next; i < 20; i++ {
		expectNext(t, s, rec(i))
	}
	expectEmpty(t, s)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// appendBytes adds b at the end of a segment file, as a write the crash cut
// short would leave it.
func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
