package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestDemoProxy runs -mode proxy where it can (it needs root): it makes
// its own network namespace, so nothing of it meets the machine's real
// interfaces.
func TestDemoProxy(t *testing.T) {
	skipWithoutTUN(t)
	out := runDemo(t, "-mode", "proxy", "-size", "4MiB")
	for _, want := range []string{
		"resolved demo.netcore.test = 10.99.0.1 in the namespace",
		"downloaded 4MiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`forwarded [2-9] TCP and [1-9] UDP flows`).MatchString(out) {
		t.Errorf("output lacks the forwarded flows:\n%s", out)
	}
	if strings.Contains(out, "curl in the namespace") && !strings.Contains(out, `curl: HTTP 200`) {
		t.Errorf("curl through the forwarder failed:\n%s", out)
	}
	if strings.Contains(out, "dig in the namespace") && !strings.Contains(out, `dig in the namespace: "10.99.0.1\n"`) {
		t.Errorf("dig through the forwarder failed:\n%s", out)
	}
}
