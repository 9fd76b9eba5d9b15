package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// runDemo runs the demo's main path in-process and returns its output.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("demo %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestDemoModes(t *testing.T) {
	for _, mode := range []string{"pipe", "wg"} {
		t.Run(mode, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			out := runDemo(t, "-mode", mode, "-size", "4MiB")
			for _, want := range []string{
				"stacks up",
				"name resolved through the stack: demo.netcore.test -> [192.0.2.2]",
				`GET / -> 200 OK: "hello from netcore"`,
				"downloaded 4MiB",
				"verified",
				"retransmits",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if mode == "wg" && !strings.Contains(out, "WireGuard handshake done") {
				t.Errorf("no handshake line:\n%s", out)
			}
			if !regexp.MustCompile(`\n\s+4194304\s+[0-9.]+\s+[0-9.]+\s+\d+\s+\d+\s+\d+\s*\n`).MatchString(out) {
				t.Errorf("no summary row for 4 MiB:\n%s", out)
			}
		})
	}
}

func TestDemoBadFlags(t *testing.T) {
	var errOut bytes.Buffer
	if _, err := parseFlags([]string{"-size", "lots"}, &errOut); err == nil {
		t.Fatal("bad -size accepted")
	}
	o, _ := parseFlags([]string{"-mode", "carrier-pigeon"}, &errOut)
	if err := run(context.Background(), o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "unknown -mode") {
		t.Fatalf("unknown mode: %v", err)
	}
}

// TestDemoPCAP checks that tshark reads the capture -pcap writes, in each
// mode, and that capinfos finds it in strict time order.
func TestDemoPCAP(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (.ci/run installs it)")
	}
	for _, mode := range []string{"pipe", "wg"} {
		t.Run(mode, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "a.pcap")
			runDemo(t, "-mode", mode, "-size", "64KiB", "-pcap", file)
			out, err := exec.Command(tshark, "-r", file, "-Y", "http.request", "-T", "fields", "-e", "http.request.uri").CombinedOutput()
			if err != nil {
				t.Fatalf("tshark: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "/payload?size=65536") {
				t.Fatalf("tshark found no HTTP request for the payload:\n%s", out)
			}
			dns, err := exec.Command(tshark, "-r", file, "-Y", "dns.qry.name == demo.netcore.test").CombinedOutput()
			if err != nil || len(bytes.TrimSpace(dns)) == 0 {
				t.Fatalf("tshark found no DNS query: %v\n%s", err, dns)
			}
			capinfosInOrder(t, file)
		})
	}
}

// capinfosInOrder checks that capinfos, where installed, finds file in
// strict time order.
func capinfosInOrder(t *testing.T, file string) {
	capinfos, err := exec.LookPath("capinfos")
	if err != nil {
		t.Log("capinfos not installed: time order not checked")
		return
	}
	out, err := exec.Command(capinfos, "-o", file).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`Strict time order:\s+True`).Match(out) {
		t.Fatalf("capture not in time order:\n%s", out)
	}
}

// TestDemoTUN runs -mode tun where it can (it needs root), in a child
// process inside a network namespace of its own, so the TUN and the host
// side's traffic never meet the machine's real interfaces.
func TestDemoTUN(t *testing.T) {
	if os.Getenv("DEMO_TUN_CHILD") == "1" {
		out := runDemo(t, "-mode", "tun")
		os.Stdout.WriteString(out)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("-mode tun needs root (CAP_NET_ADMIN)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemoTUN$", "-test.v")
	cmd.Env = append(os.Environ(), "DEMO_TUN_CHILD=1")
	cmd.SysProcAttr = newNetNS(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo -mode tun in a new netns: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `host kernel GET http://198.18.88.2:80/ -> 200 OK: "hello from netcore"`) {
		t.Fatalf("output:\n%s", out)
	}
	if !strings.Contains(string(out), "curl http://198.18.88.2:80/") {
		t.Fatalf("no curl line:\n%s", out)
	}
}

func TestSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"8MiB", 8 << 20}, {"1GiB", 1 << 30}, {"100", 100}, {"2KB", 2000}, {"5B", 5}} {
		var s sizeFlag
		if err := s.Set(tc.in); err != nil || int64(s) != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, s, err, tc.want)
		}
	}
}
