package tundev_test

import (
	"os"
	"testing"

	"github.com/netcore-go/netcore/internal/netns"
)

// newNetNS makes a network namespace for tb (closed in tb.Cleanup), or
// skips tb when it cannot.
func newNetNS(tb testing.TB) *netns.NS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (CAP_NET_ADMIN) for a network namespace and a TUN device")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		tb.Skipf("no /dev/net/tun: %v", err)
	}
	n, err := netns.New()
	if err != nil {
		tb.Skipf("cannot make a network namespace: %v", err)
	}
	tb.Cleanup(n.Close)
	return n
}
