package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrFormat is returned by Parse for bytes that are not a capture as Writer
// writes them.
var ErrFormat = errors.New("pcap: not a nanosecond little-endian pcap file")

// File is a capture read back by Parse.
type File struct {
	SnapLen  int
	LinkType uint32
	Records  []Record
}

// Record is one packet of a File.
type Record struct {
	Time time.Time
	// Len is the packet's length; Data holds its first min(Len, SnapLen)
	// bytes.
	Len  int
	Data []byte
}

// Parse reads back a capture Writer wrote (netcore's tests check captures
// with it). Data of each record aliases b.
func Parse(b []byte) (File, error) {
	if len(b) < fileHeaderLen || binary.LittleEndian.Uint32(b) != MagicNanos {
		return File{}, ErrFormat
	}
	f := File{SnapLen: int(binary.LittleEndian.Uint32(b[16:])), LinkType: binary.LittleEndian.Uint32(b[20:])}
	for rest := b[fileHeaderLen:]; len(rest) > 0; {
		r, n, err := parseRecord(rest)
		if err != nil {
			return f, fmt.Errorf("record %d: %w", len(f.Records), err)
		}
		f.Records = append(f.Records, r)
		rest = rest[n:]
	}
	return f, nil
}

// parseRecord reads the record at the start of b and its length in bytes.
func parseRecord(b []byte) (Record, int, error) {
	if len(b) < recordHeaderLen {
		return Record{}, 0, ErrFormat
	}
	sec, nsec := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	capLen, size := int(binary.LittleEndian.Uint32(b[8:])), int(binary.LittleEndian.Uint32(b[12:]))
	if nsec >= 1e9 || capLen > size || len(b) < recordHeaderLen+capLen {
		return Record{}, 0, ErrFormat
	}
	r := Record{Time: time.Unix(int64(sec), int64(nsec)), Len: size, Data: b[recordHeaderLen : recordHeaderLen+capLen]}
	return r, recordHeaderLen + capLen, nil
}
