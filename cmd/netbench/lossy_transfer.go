package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netcore-go/netcore/core/impair"
)

// Transfer is one TCP stream's outcome on one path: a goodput (goodput
// cells) or a time to deliver (the deliver cell), and what the SHA-256
// check of the received bytes found.
type Transfer struct {
	// Gbps is the receiver's goodput over the measured window.
	Gbps float64 `json:"gbps,omitempty"`
	// Seconds is the time from the dial to the last byte received.
	Seconds float64 `json:"seconds,omitempty"`
	// Verified is the bytes the receiver got, all of them checked: their
	// SHA-256 against that of the same prefix of the sent stream.
	Verified int64 `json:"verified_bytes"`
	// SHA256OK reports that the check passed (every byte sent up to
	// Verified arrived, once, in order, unchanged).
	SHA256OK bool `json:"sha256_ok"`
	// NotDone says the transfer hit its time limit ("" if not).
	NotDone string `json:"not_done,omitempty"`
	// Error is what failed otherwise ("" if nothing).
	Error string `json:"error,omitempty"`
	// Data and ACKs are what the client-to-server and the
	// server-to-client links did.
	Data LinkStats `json:"data_link"`
	ACKs LinkStats `json:"ack_link"`
	// MaxPacket is the largest packet the relay passed (the Linux path).
	MaxPacket int `json:"max_packet,omitempty"`
	// Retransmits are the TCP segments both sides retransmitted, the
	// handshake's included.
	Retransmits uint64 `json:"retransmits"`
}

// LinkStats are the figures of impair.Stats the report shows.
type LinkStats struct {
	Sent       uint64 `json:"sent"`
	Lost       uint64 `json:"lost"`
	Reordered  uint64 `json:"reordered"`
	QueueDrops uint64 `json:"queue_drops"`
}

func linkStats(s impair.Stats) LinkStats {
	return LinkStats{Sent: s.Sent, Lost: s.Lost, Reordered: s.Reordered, QueueDrops: s.QueueDrops}
}

func (t *Transfer) addStats(ab, ba impair.Stats) { t.Data, t.ACKs = linkStats(ab), linkStats(ba) }

// ok reports whether t has a figure: no error, within its limit, verified.
func (t *Transfer) ok() bool { return t.Error == "" && t.NotDone == "" && t.SHA256OK }

// describe is t on one log line.
func (t *Transfer) describe(deliver bool) string {
	s := ""
	switch {
	case t.Error != "":
		return "error: " + t.Error
	case t.NotDone != "":
		s = t.NotDone
	case deliver:
		s = fmt.Sprintf("%.3f s", t.Seconds)
	default:
		s = fmt.Sprintf("%.4f Gbit/s", t.Gbps)
	}
	check := "SHA-256 ok"
	if !t.SHA256OK {
		check = "SHA-256 MISMATCH"
	}
	lost := 0.0
	if t.Data.Sent > 0 {
		lost = float64(t.Data.Lost) / float64(t.Data.Sent) * 100
	}
	return fmt.Sprintf("%s (%.1f MB, %s; data link: %d sent, %.1f%% lost, %d queue drops; %d retransmits)",
		s, float64(t.Verified)/1e6, check, t.Data.Sent, lost, t.Data.QueueDrops, t.Retransmits)
}

// goodput streams seeded bytes from the client to the server for
// o.warmup plus o.duration after the connection is up, and reports the
// receiver's rate over the duration.
func goodput(e *lossyEnv, o lossyOptions, seed uint64) *Transfer {
	ctx, cancel := context.WithTimeout(context.Background(), o.limit+o.warmup+o.duration)
	defer cancel()
	s, err := openStream(ctx, o.limit, e, seed, 0)
	if err != nil {
		return failed(err, "no connection", o.limit)
	}
	time.Sleep(o.warmup)
	n0, t0 := s.received.Load(), time.Now()
	time.Sleep(o.duration)
	n1, elapsed := s.received.Load(), time.Since(t0)
	s.stop()
	t := &Transfer{Gbps: float64(n1-n0) * 8 / elapsed.Seconds() / 1e9}
	s.verify(t)
	return t
}

// deliver moves o.size seeded bytes from the client to the server and
// reports the time from the dial to the last byte, or that it was not
// done within o.limit.
func deliver(e *lossyEnv, o lossyOptions, seed uint64) *Transfer {
	ctx, cancel := context.WithTimeout(context.Background(), o.limit)
	defer cancel()
	t0 := time.Now()
	s, err := openStream(ctx, o.limit, e, seed, int64(o.size))
	if err != nil {
		return failed(err, "not done", o.limit)
	}
	t := &Transfer{}
	select {
	case <-s.got:
		t.Seconds = s.gotAt.Sub(t0).Seconds()
	case <-ctx.Done():
		t.NotDone = fmt.Sprintf("not done in %v", o.limit)
	}
	s.stop()
	s.verify(t)
	return t
}

// errSetupTimeout is openStream's error when the set-up ran out of time.
var errSetupTimeout = errors.New("set-up not done in time")

// setupErr is errSetupTimeout if ctx is done, else err.
func setupErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errSetupTimeout
	}
	return err
}

// failed is the Transfer of a stream that did not open: not done when its
// set-up ran out of time, an error otherwise.
func failed(err error, what string, limit time.Duration) *Transfer {
	if errors.Is(err, errSetupTimeout) {
		return &Transfer{NotDone: fmt.Sprintf("%s in %v", what, limit), SHA256OK: true}
	}
	return &Transfer{Error: err.Error()}
}

// stream is one TCP connection of a path carrying seeded bytes from the
// client to the server, with the server's SHA-256 of what it got. It owns
// a sender and a receiver goroutine, ended by stop.
type stream struct {
	seed     uint64
	conns    closers
	unhook   func() bool // stops the context's abort
	wg       sync.WaitGroup
	received atomic.Int64 // bytes the receiver hashed
	h        hash.Hash    // the receiver's; read after stop
	want     int64        // bytes to send (0: until stop)
	got      chan struct{}
	gotAt    time.Time // when the receiver had want bytes; set before got closes
}

// openStream listens on the server side, dials from the client side and
// starts sending at once (a lost final ACK of the handshake is repaired by
// the first data segment, as in any application), then accepts and starts
// receiving. The dial and the accept may take up to setup; ctx bounds
// them too and, once it ends, aborts the stream.
func openStream(ctx context.Context, setup time.Duration, e *lossyEnv, seed uint64, want int64) (*stream, error) {
	ln, err := e.listen()
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &stream{seed: seed, h: sha256.New(), want: want, got: make(chan struct{})}
	s.conns.add(ln)
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	s.unhook = context.AfterFunc(ctx, s.conns.closeAll)
	setupCtx, cancel := context.WithTimeout(ctx, setup)
	defer cancel()
	stopAccept := context.AfterFunc(setupCtx, func() { ln.Close() })
	defer stopAccept()
	cli, err := e.dial(setupCtx, addrPort(ln.Addr()))
	if err != nil {
		s.unhook()
		s.conns.closeAll()
		s.conns.add(<-acc)
		return nil, setupErr(setupCtx, fmt.Errorf("dial: %w", err))
	}
	s.conns.add(cli)
	s.wg.Go(func() { s.send(cli) })
	srv := <-acc
	if srv == nil {
		s.stop()
		return nil, setupErr(setupCtx, errors.New("accept failed"))
	}
	s.conns.add(srv)
	s.wg.Go(func() { s.receive(srv) })
	return s, nil
}

// stop aborts the connection (a reset: nothing lingers in a kernel) and
// waits for the sender and the receiver.
func (s *stream) stop() {
	s.unhook()
	s.conns.closeAll()
	s.wg.Wait()
}

// chunk is the size of each write and read.
const chunk = 64 << 10

// send writes the seeded stream until want bytes are out or a write fails.
func (s *stream) send(c net.Conn) {
	src := seededStream(s.seed)
	buf := make([]byte, chunk)
	for sent := int64(0); s.want == 0 || sent < s.want; {
		n := chunk
		if s.want > 0 {
			n = int(min(int64(n), s.want-sent))
		}
		src.Read(buf[:n])
		k, err := c.Write(buf[:n])
		sent += int64(k)
		if err != nil {
			return
		}
	}
}

// receive hashes what it reads until a read fails or want bytes arrived.
func (s *stream) receive(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		k, err := c.Read(buf)
		s.h.Write(buf[:k])
		n := s.received.Add(int64(k))
		if s.want > 0 && n >= s.want {
			s.gotAt = time.Now()
			close(s.got)
			return
		}
		if err != nil {
			return
		}
	}
}

// verify checks, after stop, the receiver's SHA-256 against that of the
// same prefix of the seeded stream.
func (s *stream) verify(t *Transfer) {
	n := s.received.Load()
	want := sha256.New()
	io.CopyN(want, seededStream(s.seed), n)
	t.Verified = n
	t.SHA256OK = string(want.Sum(nil)) == string(s.h.Sum(nil))
}

// seededStream is the bytes a stream of seed carries.
func seededStream(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "netbench lossy stream")
	return rand.NewChaCha8(key)
}

// closers closes a stream's listener and connections, at once or, for
// those added later, when they are added.
type closers struct {
	mu     sync.Mutex
	closed bool
	cs     []io.Closer
}

// add registers c (nil is ignored), closing it at once if closeAll ran.
func (cs *closers) add(c io.Closer) {
	if c == nil {
		return
	}
	cs.mu.Lock()
	closed := cs.closed
	if !closed {
		cs.cs = append(cs.cs, c)
	}
	cs.mu.Unlock()
	if closed {
		abort(c)
	}
}

// closeAll closes everything added, once.
func (cs *closers) closeAll() {
	cs.mu.Lock()
	all := cs.cs
	cs.cs, cs.closed = nil, true
	cs.mu.Unlock()
	for _, c := range all {
		abort(c)
	}
}

// abort closes c; a connection is reset (linger 0) and its blocked calls
// woken first.
func abort(c io.Closer) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
	if d, ok := c.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(time.Now())
	}
	c.Close()
}
