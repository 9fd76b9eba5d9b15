package core

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gvlog "gvisor.dev/gvisor/pkg/log"
)

// gVisor logs through one process-wide logger (gvisor.dev/gvisor/pkg/log),
// which by default writes to stderr ("Martian packet dropped…",
// "handleListenSegment() failed…"). Its lines carry no stack: gVisor's
// goroutines log them wherever they are. So netcore installs one emitter
// in that logger, once, when package core is initialised, and the emitter
// hands each line to the Config.Logf of every open stack that set one, and
// to no one else. This router is the one piece of package-level mutable
// state in netcore, because gVisor's logger is one.
//
// The emitter is set in place, in the logger gVisor's packages found at
// their own initialisation: gVisor keeps rate-limited loggers made then
// (the Martian-packet one, once a minute per process), which
// log.SetTarget, replacing the logger, would not reach.
var gvisorLog = &logRouter{}

func init() { gvisorLog.install(gvlog.Log()) }

// logRouter is gVisor's log emitter for the whole process: it fans every
// line out to the stacks that asked for them.
type logRouter struct {
	mu   sync.Mutex                  // serialises changes to stacks
	subs atomic.Pointer[[]*Netstack] // copy on write, read by Emit
	own  *gvlog.BasicLogger          // the logger whose emitter this is
}

// install makes r the emitter of l, gVisor's logger. It runs once, from
// init, before any goroutine of this package exists.
func (r *logRouter) install(l *gvlog.BasicLogger) {
	r.own = l
	l.Emitter = r
}

// Emit implements gVisor's log.Emitter: it calls each subscribed stack's
// Logf with the line, prefixed "gvisor: ". If the program replaced gVisor's
// logger with its own (log.SetTarget), lines still reaching r (from the
// loggers gVisor made at initialisation) go there too.
func (r *logRouter) Emit(depth int, level gvlog.Level, ts time.Time, format string, v ...any) {
	if subs := r.subs.Load(); subs != nil {
		for _, ns := range *subs {
			ns.cfg.Logf("gvisor: "+format, v...)
		}
	}
	if cur := gvlog.Log(); cur != r.own && cur.Emitter != nil {
		cur.Emitter.Emit(depth+1, level, ts, format, v...)
	}
}

// subscribe adds ns to the stacks that get gVisor's lines.
func (r *logRouter) subscribe(ns *Netstack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var subs []*Netstack
	if p := r.subs.Load(); p != nil {
		subs = slices.Clone(*p)
	}
	subs = append(subs, ns)
	r.subs.Store(&subs)
}

// unsubscribe removes ns.
func (r *logRouter) unsubscribe(ns *Netstack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.subs.Load()
	if p == nil {
		return
	}
	subs := slices.DeleteFunc(slices.Clone(*p), func(s *Netstack) bool { return s == ns })
	r.subs.Store(&subs)
}

// startLogging subscribes ns to gVisor's lines if it has a Logf.
func (ns *Netstack) startLogging() {
	if ns.cfg.Logf != nil {
		gvisorLog.subscribe(ns)
	}
}

// stopLogging ends ns's subscription; it runs once gVisor has stopped.
func (ns *Netstack) stopLogging() {
	if ns.cfg.Logf != nil {
		gvisorLog.unsubscribe(ns)
	}
}

// logf writes one of netcore's own lines to this stack's Logf, if any.
func (ns *Netstack) logf(format string, v ...any) {
	if ns.cfg.Logf != nil {
		ns.cfg.Logf("netcore: "+format, v...)
	}
}

// deviceStopped logs that a device pump stopped on err, unless the stack
// is closing (then the device fails on purpose).
func (ns *Netstack) deviceStopped(dir string, err error) {
	if err == nil {
		return
	}
	select {
	case <-ns.stopping:
	default:
		ns.logf("device %s failed, its pump stopped: %v", dir, err)
	}
}

var _ gvlog.Emitter = (*logRouter)(nil)
