package dialer_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/netcore-go/netcore/internal/testnet"
	"github.com/netcore-go/netcore/netconn"
)

func TestDialPing(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		name, network, address string
		want                   netip.Addr
	}{
		{"IPv4", "ping4", testnet.AddrB.String(), testnet.AddrB},
		{"IPv6", "ping6", testnet.Addr6B.String(), testnet.Addr6B},
		{"IPv6Brackets", "ping6", "[" + testnet.Addr6B.String() + "]", testnet.Addr6B},
		{"ByName4", "ping4", "peer.test", testnet.AddrB},
		{"ByName6", "ping6", "peer.test", testnet.Addr6B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDialer(p)
			d.Hosts = map[string][]netip.Addr{"peer.test": {testnet.AddrB, testnet.Addr6B}}
			c, err := d.Dial(tc.network, tc.address)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if _, ok := c.(*netconn.PingConn); !ok {
				t.Fatalf("conn is %T, want *netconn.PingConn", c)
			}
			if got := c.RemoteAddr().(*net.IPAddr).IP; !got.Equal(tc.want.AsSlice()) {
				t.Errorf("RemoteAddr = %v, want %v", got, tc.want)
			}
			ping(t, c, tc.network == "ping6", 7)
		})
	}
}

// ping sends one echo request on c and checks the reply.
func ping(t *testing.T, c net.Conn, ipv6 bool, seq uint16) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	data := []byte("netcore ping")
	if _, err := c.Write(netconn.EchoRequest(ipv6, seq, data)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	reply := buf[:n]
	wantType := byte(0) // ICMPv4 echo reply
	if ipv6 {
		wantType = 129
	}
	if n < 8 || reply[0] != wantType || binary.BigEndian.Uint16(reply[6:]) != seq || !bytes.Equal(reply[8:], data) {
		t.Fatalf("reply = % x, want an echo reply (type %d) with seq %d and the data", reply, wantType, seq)
	}
}
