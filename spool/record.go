package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
)

// headerSize is the framing in front of every payload: a little-endian uint32
// length and a little-endian uint32 CRC-32C.
const headerSize = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record whose framing or checksum is wrong. It never leaves
// the package: recovery truncates such a tail, and a record found bad later is
// skipped and counted as dropped.
var errCorrupt = errors.New("spool: corrupt record")

// recordCRC covers the length field as well as the payload. Were it to cover the
// payload alone, a run of zero bytes (what some file systems show for blocks
// allocated but never written before a crash) would read as a valid empty record:
// CRC-32C of no bytes is 0.
func recordCRC(lenField, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, lenField), castagnoli, payload)
}

// header frames payload.
func header(payload []byte) [headerSize]byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], recordCRC(h[0:4], payload))
	return h
}

// readHeader returns the framed length (header included) of the record at off in a
// segment whose valid data ends at size. A length that runs past size is
// errCorrupt: it cannot have been written by Append, which only publishes whole
// records.
func readHeader(f *os.File, off, size int64) (framed int64, crc uint32, err error) {
	if size-off < headerSize {
		return 0, 0, errCorrupt
	}
	var h [headerSize]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return 0, 0, noEOF(err)
	}
	framed = headerSize + int64(binary.LittleEndian.Uint32(h[0:4]))
	if framed > size-off {
		return 0, 0, errCorrupt
	}
	return framed, binary.LittleEndian.Uint32(h[4:8]), nil
}

// readRecord returns a fresh copy of the payload at off, checked against its CRC.
func readRecord(f *os.File, off, size int64) ([]byte, error) {
	framed, crc, err := readHeader(f, off, size)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, framed)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, noEOF(err)
	}
	if recordCRC(buf[0:4], buf[headerSize:]) != crc {
		return nil, errCorrupt
	}
	return buf[headerSize:], nil
}

// noEOF turns a short read of data we believed to be there into an I/O error: the
// file is shorter than our bookkeeping, which is not the same as a torn record.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// scanResult is what recovery learns about one segment file.
type scanResult struct {
	end     int64 // end of the last valid record: what follows is torn or garbage
	records int   // valid records between the scan start and end
}

// scanSegment checks the records of the first size bytes of f from start on,
// verifying lengths and checksums, and stops at the first one that does not check
// out. The acked prefix before start is not read: it is not needed, and damage
// there must not cost the pending records after it.
//
// Only real read errors are returned as errors: those must not be mistaken for a
// torn tail, since truncating there would destroy valid records.
func scanSegment(f *os.File, size, start int64) (scanResult, error) {
	res := scanResult{end: start}
	if start >= size {
		res.end = size
		return res, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), 1<<20)
	var (
		h       [headerSize]byte
		payload []byte
	)
	for size-res.end >= headerSize {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return res, noEOF(err)
		}
		n := int64(binary.LittleEndian.Uint32(h[0:4]))
		// Checking the length against the file before allocating keeps a garbage
		// length from asking for up to 4 GiB.
		if n > size-res.end-headerSize {
			break
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return res, noEOF(err)
		}
		if recordCRC(h[0:4], payload) != binary.LittleEndian.Uint32(h[4:8]) {
			break
		}
		res.end += headerSize + n
		res.records++
	}
	return res, nil
}
