package quicbench_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
	"github.com/quic-go/quic-go"
)

// serverName is the name the test certificate is for.
const serverName = "netcore.test"

// sockets is a client and a server UDP socket that reach each other.
type sockets struct {
	cli, srv net.PacketConn
}

// netcoreSockets opens the two sockets on two netcore stacks joined by a
// pipe (testnet.NewPair): the client on A, the server on B. quic-go sees
// plain net.PacketConns (no SyscallConn), so it makes one ReadFrom and one
// WriteTo per packet.
func netcoreSockets(tb testing.TB) sockets {
	tb.Helper()
	return openOn(tb, testnet.NewPair(tb))
}

// pumpedSockets is netcoreSockets over a plain pipe: each stack's device
// pumps move the packets through it (PipeDevs attached, not JoinPipe's
// inline delivery), so the receiving stack's gVisor work runs on its own
// device goroutine instead of on the sender's engine. It measures what
// spreading the two stacks' work over the cores would win.
func pumpedSockets(tb testing.TB) sockets {
	tb.Helper()
	a := testnet.Start(tb, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrA, 24)}})
	b := testnet.Start(tb, core.Config{Addrs: []netip.Prefix{netip.PrefixFrom(testnet.AddrB, 24)}})
	pipe := core.NewPipe(0)
	if err := a.AttachDevice(&core.PipeDev{End: pipe.A, MTU: 1500, Offload: true}); err != nil {
		tb.Fatal(err)
	}
	if err := b.AttachDevice(&core.PipeDev{End: pipe.B, MTU: 1500, Offload: true}); err != nil {
		tb.Fatal(err)
	}
	return openOn(tb, testnet.Pair{A: a, B: b})
}

// openOn opens the client socket on p.A and the server's on p.B.
func openOn(tb testing.TB, p testnet.Pair) sockets {
	tb.Helper()
	ctx := context.Background()
	srv, err := netconn.ListenUDP(ctx, p.B.CommandChannel(), "udp4", netip.AddrPortFrom(testnet.AddrB, 0))
	if err != nil {
		tb.Fatal(err)
	}
	cli, err := netconn.ListenUDP(ctx, p.A.CommandChannel(), "udp4", netip.AddrPortFrom(testnet.AddrA, 0))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close(); srv.Close() })
	return sockets{cli: cli, srv: srv}
}

// kernelSockets opens the two sockets on the kernel's loopback, with
// quic-go's GSO off (QUIC_GO_DISABLE_GSO=1): it still batches its reads.
func kernelSockets(tb testing.TB) sockets {
	tb.Helper()
	tb.Setenv("QUIC_GO_DISABLE_GSO", "1")
	var s [2]*net.UDPConn
	for i := range s {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		s[i] = c
	}
	tb.Cleanup(func() { s[0].Close(); s[1].Close() })
	return sockets{cli: s[0], srv: s[1]}
}

// transports wraps the sockets in quic-go Transports, closed when tb ends.
func transports(tb testing.TB, s sockets) (cli, srv *quic.Transport) {
	cli, srv = &quic.Transport{Conn: s.cli}, &quic.Transport{Conn: s.srv}
	tb.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv
}

// tlsConfigs makes a self-signed certificate for serverName and the
// server's and client's TLS configs for it, with ALPN proto.
func tlsConfigs(tb testing.TB, proto string) (srv, cli *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{serverName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{proto}}
	cli = &tls.Config{RootCAs: pool, ServerName: serverName, NextProtos: []string{proto}}
	return srv, cli
}

// netcorePacketSize is the QUIC packet size docs/guide.md recommends over
// netcore: the largest quic-go sends (1452 B, its packet buffer), which a
// 1500-byte MTU carries. Over a net.PacketConn without a file descriptor
// quic-go cannot set DF, so it never runs path MTU discovery and keeps
// its initial size (1280 B by default) for the whole connection; over the
// kernel's sockets it discovers 1452 B by itself.
const netcorePacketSize = 1452

// quicConfig is the QUIC config of both ends: windows large enough for a
// bulk stream, and packet as quic.Config.InitialPacketSize (0: quic-go's
// default).
func quicConfig(packet uint16) *quic.Config {
	return &quic.Config{
		InitialPacketSize:              packet,
		MaxIdleTimeout:                 30 * time.Second,
		InitialStreamReceiveWindow:     4 << 20,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 8 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
	}
}

// source is n deterministic pseudo-random bytes.
func source(n int64, seed uint64) io.Reader {
	return io.LimitReader(chachaReader{mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})}, n)
}

type chachaReader struct{ c *mrand.ChaCha8 }

func (r chachaReader) Read(p []byte) (int, error) { return r.c.Read(p) }

// digest is the SHA-256 of n bytes of source(n, seed).
func digest(n int64, seed uint64) [32]byte {
	h := sha256.New()
	io.Copy(h, source(n, seed))
	return [32]byte(h.Sum(nil))
}
