package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/signal"
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
				`A GET http://demo.netcore.test/ -> 200 OK: "hello from netcore"`,
				"downloaded 4MiB",
				"verified",
				"retransmits",
				"B's sending connection at the end: ESTABLISHED, rtt ",
				"segments out,",
				"packets: what crossed each stack's device",
				"super-segments",
				"retransmits: TCP segments the stacks sent again",
				"tail-loss probes",
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
// side's traffic never meet the machine's real interfaces. Without -serve
// the demo fetches from the host kernel, prints its table and ends; -pcap
// captures netcore's packets there too.
func TestDemoTUN(t *testing.T) {
	if os.Getenv("DEMO_TUN_CHILD") == "1" {
		out := runDemo(t, strings.Fields(os.Getenv("DEMO_TUN_ARGS"))...)
		os.Stdout.WriteString(out)
		return
	}
	skipWithoutTUN(t)
	file := filepath.Join(t.TempDir(), "tun.pcap")
	out, err := tunChild(t, "-mode tun -size 1MiB -pcap "+file).CombinedOutput()
	if err != nil {
		t.Fatalf("demo -mode tun in a new netns: %v\n%s", err, out)
	}
	for _, want := range []string{
		`host kernel GET http://198.18.88.2:80/ -> 200 OK: "hello from netcore"`,
		"downloaded 1MiB",
		"packets netcore",
		"done; the interface goes away now (with -serve it stays up for curl http://198.18.88.2:80/)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if st, err := os.Stat(file); err != nil || st.Size() < 1<<20 {
		t.Fatalf("-pcap in -mode tun: %v, %d bytes; want the 1 MiB download in it", err, sizeOf(st))
	}
	if tshark, err := exec.LookPath("tshark"); err == nil {
		uris, err := exec.Command(tshark, "-r", file, "-Y", "http.request", "-T", "fields", "-e", "http.request.uri").CombinedOutput()
		if err != nil || !strings.Contains(string(uris), "/payload?size=1048576") {
			t.Fatalf("tshark found no payload request in the TUN capture: %v\n%s", err, uris)
		}
	}
}

// TestDemoTUNServe checks -mode tun -serve: it keeps serving after its own
// fetches until Ctrl-C (SIGINT), then says so on a line of its own and
// exits with status 0.
func TestDemoTUNServe(t *testing.T) {
	if os.Getenv("DEMO_TUN_CHILD") == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		o, err := parseFlags([]string{"-mode", "tun", "-serve", "-size", "64KiB"}, os.Stderr)
		if err == nil {
			err = run(ctx, o, os.Stdout)
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	skipWithoutTUN(t)
	cmd := tunChild(t, "")
	cmd.Args = []string{os.Args[0], "-test.run=^TestDemoTUNServe$"}
	cmd.Env = append(cmd.Env, "DEMO_TUN_CHILD=serve")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "serving until Ctrl-C") {
			cmd.Process.Signal(os.Interrupt)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo -mode tun -serve after SIGINT: %v\n%s", err, out.String())
	}
	// The stack is closed by then; its final figures are still there.
	end := `\] stopped serving; the interface goes away now\n` +
		`\[[ .0-9]+s\] final figures: [1-9][0-9]* connections accepted, [1-9][0-9]* packets in, [1-9][0-9]* out, [0-9]+ TCP segments retransmitted\n(PASS\n)?$`
	if !regexp.MustCompile(end).MatchString(out.String()) {
		t.Fatalf("output does not end with the stop line and the final figures:\n%s", out.String())
	}
}

// skipWithoutTUN skips a test that needs root and /dev/net/tun.
func skipWithoutTUN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("-mode tun needs root (CAP_NET_ADMIN)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
}

// tunChild returns this test binary re-run as TestDemoTUN's child with
// args, in a network namespace of its own.
func tunChild(t *testing.T, args string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestDemoTUN$", "-test.v")
	cmd.Env = append(os.Environ(), "DEMO_TUN_CHILD=1", "DEMO_TUN_ARGS="+args)
	cmd.SysProcAttr = newNetNS(t)
	return cmd
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}

// TestInterruptedEndsLine checks that on a terminal the line a Ctrl-C was
// echoed on is ended before the demo's last line.
func TestInterruptedEndsLine(t *testing.T) {
	for _, tc := range []struct {
		terminal bool
		want     string
	}{{true, "\n["}, {false, "["}} {
		var out bytes.Buffer
		r := &reporter{out: &out, progress: tc.terminal}
		r.interrupted("stopped")
		if !strings.HasPrefix(out.String(), tc.want) || !strings.HasSuffix(out.String(), "] stopped\n") {
			t.Errorf("terminal %v: %q, want it to start with %q and end with the line", tc.terminal, out.String(), tc.want)
		}
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
