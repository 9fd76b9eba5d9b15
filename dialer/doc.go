// Package dialer dials connections through a netcore stack, as net.Dialer
// does through the host's kernel.
//
// A Dialer holds the stack's Channel and the options net.Dialer has
// (Timeout, Deadline, LocalAddr, KeepAlive, KeepAliveConfig,
// FallbackDelay). Its DialContext fits http.Transport.DialContext, so an
// http.Client talks over the userspace stack unchanged.
//
// Names are resolved through the stack too: the Dialer's static Hosts are
// consulted first, then the DNS servers in DNSServers are asked by Go's own
// resolver (net.Resolver with PreferGo), whose queries travel over netcore
// UDP and TCP sockets. The resolver is available as Dialer.Resolver for
// lookups of other record types (SRV, TXT, MX, CNAME).
//
// Names resolving to both IPv6 and IPv4 addresses are dialled with Happy
// Eyeballs (RFC 8305) as net.Dialer does: IPv6 first, IPv4 after
// FallbackDelay or as soon as IPv6 fails; the losing connection is closed.
package dialer
