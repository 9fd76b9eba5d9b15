package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/netcore-go/netcore/core"
	"github.com/netcore-go/netcore/tundev"
)

// wgTunnel is two wireguard-go devices, one per stack, each on a netcore
// virtual TUN, peered over 127.0.0.1 UDP.
type wgTunnel struct {
	devs  [2]*device.Device
	ports [2]int
}

// joinWireGuard attaches a virtual TUN to each stack and connects them with
// WireGuard, with keys made now.
func joinWireGuard(a, b *core.Netstack) (*wgTunnel, error) {
	t := &wgTunnel{}
	var keys [2][32]byte
	stacks := [2]*core.Netstack{a, b}
	for i, ns := range stacks {
		if _, err := rand.Read(keys[i][:]); err != nil {
			return nil, err
		}
		vt := tundev.NewVirtual(tundev.VirtualConfig{MTU: ns.MTU()})
		if err := ns.AttachDevice(vt); err != nil {
			return nil, err
		}
		t.devs[i] = device.NewDevice(vt, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
		port, err := t.listen(i, keys[i])
		if err != nil {
			t.Close()
			return nil, err
		}
		t.ports[i] = port
	}
	allowed := [2]string{addrB.Addr().String() + "/32", addrA.Addr().String() + "/32"}
	for i := range 2 {
		peer := 1 - i
		cfg := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s\n",
			hex.EncodeToString(publicKey(keys[peer])), t.ports[peer], allowed[i])
		if i == 0 {
			// Only A keeps the tunnel alive, so only A starts the first
			// handshake: no crossed handshakes to sort out.
			cfg += "persistent_keepalive_interval=25\n"
		}
		if err := t.devs[i].IpcSet(cfg); err != nil {
			t.Close()
			return nil, fmt.Errorf("wireguard peer config: %w", err)
		}
	}
	return t, nil
}

// listen gives device i its private key, brings it up on an ephemeral
// UDP port and returns the port.
func (t *wgTunnel) listen(i int, key [32]byte) (int, error) {
	if err := t.devs[i].IpcSet("private_key=" + hex.EncodeToString(key[:]) + "\nlisten_port=0\n"); err != nil {
		return 0, fmt.Errorf("wireguard config: %w", err)
	}
	if err := t.devs[i].Up(); err != nil {
		return 0, err
	}
	v, err := t.get(i, "listen_port")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// get reads one key of device i's UAPI state.
func (t *wgTunnel) get(i int, key string) (string, error) {
	state, err := t.devs[i].IpcGet()
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(state))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == key {
			return v, nil
		}
	}
	return "", nil
}

// waitHandshake waits until device 0 has completed a handshake. A's
// persistent keep-alive starts one as soon as it is configured.
func (t *wgTunnel) waitHandshake(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if v, _ := t.get(0, "last_handshake_time_sec"); v != "" && v != "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("no WireGuard handshake within %v", limit)
}

// Close closes both devices (and so their virtual TUNs).
func (t *wgTunnel) Close() {
	for _, d := range t.devs {
		if d != nil {
			d.Close()
		}
	}
}

// publicKey derives a Curve25519 public key (clamping the private key as
// WireGuard does).
func publicKey(priv [32]byte) []byte {
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	pub, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	return pub
}
