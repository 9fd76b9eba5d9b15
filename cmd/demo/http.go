package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/netcore-go/netcore/core"
)

// checksumTrailer carries the SHA-256 of a payload after its body.
const checksumTrailer = "X-Payload-Sha256"

// newHandler serves "/" (a greeting) and "/payload?size=N" (N pseudo-random
// bytes with their SHA-256 in a trailer).
func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from netcore")
	})
	mux.HandleFunc("/payload", servePayload)
	return mux
}

func servePayload(w http.ResponseWriter, r *http.Request) {
	size, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
	if err != nil || size < 0 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	block := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'n', 'e', 't', 'c', 'o', 'r', 'e'}).Read(block)
	w.Header().Set("Trailer", checksumTrailer)
	w.Header().Set("Content-Type", "application/octet-stream")
	h := sha256.New()
	for left := size; left > 0; {
		chunk := block[:min(left, int64(len(block)))]
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return
		}
		left -= int64(len(chunk))
	}
	w.Header().Set(checksumTrailer, hex.EncodeToString(h.Sum(nil)))
}

// get fetches url and returns its body and status.
func get(ctx context.Context, c *http.Client, url string) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.Status, err
}

// result is what a download measured.
type result struct {
	bytes   int64
	elapsed time.Duration
	stacks  []stackStats  // the stacks' counters afterwards
	server  string        // the serving stack's name
	conn    *core.TCPInfo // the serving connection's TCP info afterwards
}

// stackStats is one stack's counters, by the stack's name.
type stackStats struct {
	name  string
	stats core.Stats
}

// download fetches size bytes of payload from base, showing progress, and
// checks the checksum the server sent.
func download(ctx context.Context, c *http.Client, base string, size int64, r *reporter) (result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/payload?size=%d", base, size), nil)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return result{}, fmt.Errorf("GET /payload: %s", resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, r.meter(size, start)), resp.Body)
	r.done()
	if err != nil {
		return result{}, fmt.Errorf("download after %d bytes: %w", n, err)
	}
	res := result{bytes: n, elapsed: time.Since(start)}
	want, got := resp.Trailer.Get(checksumTrailer), hex.EncodeToString(h.Sum(nil))
	if n != size || want != got {
		return res, fmt.Errorf("payload: %d bytes, sha256 %s; want %d bytes, sha256 %s", n, got, size, want)
	}
	r.step("downloaded %s, SHA-256 %s… verified", formatSize(n), got[:16])
	return res, nil
}
