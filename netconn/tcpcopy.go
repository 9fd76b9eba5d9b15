package netconn

import (
	"io"
	"sync"
)

// copyBufSize is the chunk size of ReadFrom and WriteTo: large, so that
// io.Copy makes few round trips to the engine.
const copyBufSize = 256 << 10

// copyBufs recycles the chunks of ReadFrom and WriteTo across conns, as
// core pools its requests.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// ReadFrom implements io.ReaderFrom: it copies r to the stream in large
// chunks until r returns io.EOF, which is not an error.
func (c *TCPConn) ReadFrom(r io.Reader) (int64, error) { return copyChunks(c, r) }

// WriteTo implements io.WriterTo: it copies the stream to w in large chunks
// until the peer ends it (io.EOF, not an error) or an error.
func (c *TCPConn) WriteTo(w io.Writer) (int64, error) { return copyChunks(w, c) }

// copyChunks copies r to w through a pooled chunk until r returns io.EOF
// (not an error) or either fails; a short write without an error is
// io.ErrShortWrite. It is io.CopyBuffer without the ReaderFrom and WriterTo
// detours, which would lead straight back to ReadFrom and WriteTo.
func copyChunks(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
