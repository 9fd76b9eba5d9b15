package dialer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/listener"
)

const bigBody = 64 << 20 // bytes served by /big

// bigReader returns the deterministic content of /big.
func bigReader() io.Reader {
	return io.LimitReader(mrand.NewChaCha8([32]byte{'n', 'e', 't', 'c', 'o', 'r', 'e'}), bigBody)
}

// httpFixture is an http.Server on stack B and an http.Client on stack A
// whose Transport dials through a dialer.Dialer.
type httpFixture struct {
	base     string       // URL prefix, "http(s)://svc.test:port"
	client   *http.Client // over netcore
	newConns atomic.Int64 // connections the server saw
}

func TestHTTP(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "HTTP"
		if useTLS {
			name = "HTTPS"
		}
		t.Run(name, func(t *testing.T) {
			f := startHTTP(t, newPair(t), useTLS)
			t.Run("KeepAlive", f.testKeepAlive)
			t.Run("Concurrent", f.testConcurrent)
			t.Run("Body64MiB", f.testBigBody)
		})
	}
}

// startHTTP serves the test handlers on B and builds the client on A.
func startHTTP(t *testing.T, p testnet.Pair, useTLS bool) *httpFixture {
	t.Helper()
	f := &httpFixture{}
	ln, err := listener.Listen(p.B.CommandChannel(), "tcp", ":0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	srv := &http.Server{
		Handler:  handlers(),
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.newConns.Add(1)
			}
		},
	}
	d := newDialer(p)
	d.Hosts = map[string][]netip.Addr{"svc.test": {testnet.Addr6B, testnet.AddrB}}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 100}
	scheme := "http"
	if useTLS {
		scheme = "https"
		cert, pool := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	f.base = scheme + "://" + net.JoinHostPort("svc.test", strconv.Itoa(port))
	f.client = &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	return f
}

func handlers() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Query().Get("i"))
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(bigBody))
		io.Copy(w, bigReader())
	})
	return mux
}

// get fetches path and returns its body.
func (f *httpFixture) get(path string, trace *httptrace.ClientTrace) (string, error) {
	req, err := http.NewRequest("GET", f.base+path, nil)
	if err != nil {
		return "", err
	}
	if trace != nil {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(body), err
}

// testKeepAlive makes sequential requests: they share one connection.
func (f *httpFixture) testKeepAlive(t *testing.T) {
	before := f.newConns.Load()
	var reused atomic.Int64
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused.Add(1)
		}
	}}
	const n = 20
	for i := range n {
		if body, err := f.get("/hello?i="+strconv.Itoa(i), trace); err != nil || body != "hello "+strconv.Itoa(i) {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if got := f.newConns.Load() - before; got != 1 {
		t.Errorf("server saw %d new connections, want 1", got)
	}
	if got := reused.Load(); got != n-1 {
		t.Errorf("%d requests reused a connection, want %d", got, n-1)
	}
}

// testConcurrent makes 100 requests at once.
func (f *httpFixture) testConcurrent(t *testing.T) {
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := "hello " + strconv.Itoa(i)
			body, err := f.get("/hello?i="+strconv.Itoa(i), nil)
			if err == nil && body != want {
				err = fmt.Errorf("body %q, want %q", body, want)
			}
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testBigBody downloads 64 MiB and checks its SHA-256.
func (f *httpFixture) testBigBody(t *testing.T) {
	resp, err := f.client.Get(f.base + "/big")
	if err != nil {
		t.Fatalf("GET /big: %v", err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != bigBody {
		t.Fatalf("read %d bytes, %v; want %d", n, err, bigBody)
	}
	want := sha256.New()
	io.Copy(want, bigReader())
	if got, want := h.Sum(nil), want.Sum(nil); string(got) != string(want) {
		t.Fatalf("SHA-256 = %x, want %x", got, want)
	}
}

// selfSigned makes a certificate for svc.test and B's addresses, and a
// pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "svc.test"},
		DNSNames:              []string{"svc.test"},
		IPAddresses:           []net.IP{testnet.AddrB.AsSlice(), testnet.Addr6B.AsSlice()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
