package spool

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The ack file remembers where the oldest pending record starts: a segment
// sequence number and a byte offset in it. It has two fixed 32-byte slots, each
//
//	[generation uint64][segment uint64][offset uint64][crc32c uint32][unused uint32]
//
// and generation g is written over slot g%2, then fsynced. A crash in the middle
// of that write can only damage the slot being written, whose CRC then fails, and
// the other slot still holds the previous position: at worst the last acked
// record is sent again, which the at-least-once contract allows. This costs one
// fsync per Ack, where writing a temporary file and renaming it over the old one
// would cost two (the file, then the directory) and a metadata operation.
const (
	ackSlotSize = 32
	ackFileName = "ack"
)

// position is where the oldest pending record starts. A position naming a segment
// that no longer exists means the start of the next segment that does: segments
// are deleted only once wholly consumed, so this is always correct.
type position struct {
	seg uint64
	off int64
}

type ackFile struct {
	f   *os.File
	gen uint64 // generation of the last slot written or loaded
}

// openAckFile opens (creating if needed) the ack file in dir and returns the
// newest valid position in it; ok is false when there is none, as in a new spool.
func openAckFile(dir string) (a *ackFile, pos position, ok bool, created bool, err error) {
	path := filepath.Join(dir, ackFileName)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, pos, false, false, err
	}
	a = &ackFile{f: f}
	var buf [2 * ackSlotSize]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, pos, false, false, err
	}
	for i := 0; i+ackSlotSize <= n; i += ackSlotSize {
		slot := buf[i : i+ackSlotSize]
		if crc32.Checksum(slot[:24], castagnoli) != binary.LittleEndian.Uint32(slot[24:28]) {
			continue
		}
		gen := binary.LittleEndian.Uint64(slot[0:8])
		if ok && gen <= a.gen {
			continue
		}
		ok, a.gen = true, gen
		pos = position{seg: binary.LittleEndian.Uint64(slot[8:16]), off: int64(binary.LittleEndian.Uint64(slot[16:24]))}
	}
	return a, pos, ok, os.IsNotExist(statErr), nil
}

// store durably records pos as the start of the oldest pending record.
func (a *ackFile) store(pos position) error {
	gen := a.gen + 1
	var slot [ackSlotSize]byte
	binary.LittleEndian.PutUint64(slot[0:8], gen)
	binary.LittleEndian.PutUint64(slot[8:16], pos.seg)
	binary.LittleEndian.PutUint64(slot[16:24], uint64(pos.off))
	binary.LittleEndian.PutUint32(slot[24:28], crc32.Checksum(slot[:24], castagnoli))
	if _, err := a.f.WriteAt(slot[:], int64(gen%2)*ackSlotSize); err != nil {
		return err
	}
	if err := a.f.Sync(); err != nil {
		return err
	}
	a.gen = gen
	return nil
}

func (a *ackFile) close() error { return a.f.Close() }
