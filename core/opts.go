package core

import (
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// setOpt sets a socket option; TCP-only options fail on other kinds with
// ErrWrongKind.
func (s *socket) setOpt(opt SockOpt, v int64) error {
	o := s.ep.SocketOptions()
	switch opt {
	case OptSendBuffer:
		o.SetSendBufferSize(v, true)
		return nil
	case OptRecvBuffer:
		o.SetReceiveBufferSize(v, true)
		return nil
	}
	if s.kind != kindStream && s.kind != kindListener {
		return ErrWrongKind
	}
	switch opt {
	case OptNoDelay:
		o.SetDelayOption(v == 0)
	case OptKeepAlive:
		o.SetKeepAlive(v != 0)
	case OptKeepAliveIdle:
		ka := &s.ns.optIdle // the holder's scratch: gVisor reads it at once
		*ka = tcpip.KeepaliveIdleOption(time.Duration(v))
		return fromTCPIP(s.ep.SetSockOpt(ka))
	case OptKeepAliveInterval:
		ka := &s.ns.optInterval
		*ka = tcpip.KeepaliveIntervalOption(time.Duration(v))
		return fromTCPIP(s.ep.SetSockOpt(ka))
	case OptKeepAliveCount:
		return fromTCPIP(s.ep.SetSockOptInt(tcpip.KeepaliveCountOption, int(v)))
	case OptLinger:
		o.SetLinger(tcpip.LingerOption{Enabled: v >= 0, Timeout: time.Duration(max(v, 0))})
	default:
		return ErrInvalid
	}
	return nil
}

// setKeepAlive applies ka to a stream, best effort (see KeepAlive): the
// zero KeepAlive changes nothing.
func (s *socket) setKeepAlive(ka KeepAlive) {
	if !ka.Enable {
		return
	}
	if ka.Idle > 0 {
		_ = s.setOpt(OptKeepAliveIdle, int64(ka.Idle))
	}
	if ka.Interval > 0 {
		_ = s.setOpt(OptKeepAliveInterval, int64(ka.Interval))
	}
	if ka.Count > 0 {
		_ = s.setOpt(OptKeepAliveCount, int64(ka.Count))
	}
	_ = s.setOpt(OptKeepAlive, 1)
}

// getOpt reads a socket option.
func (s *socket) getOpt(opt SockOpt) (int64, error) {
	o := s.ep.SocketOptions()
	switch opt {
	case OptSendBuffer:
		return o.GetSendBufferSize(), nil
	case OptRecvBuffer:
		return o.GetReceiveBufferSize(), nil
	case OptNoDelay:
		return boolInt(!o.GetDelayOption()), nil
	case OptKeepAlive:
		return boolInt(o.GetKeepAlive()), nil
	case OptKeepAliveIdle:
		// Read ka only after GetSockOpt filled it in: in
		// "return int64(ka), f(&ka)" the spec leaves unspecified whether ka
		// is read before or after the call.
		var ka tcpip.KeepaliveIdleOption
		err := fromTCPIP(s.ep.GetSockOpt(&ka))
		return int64(ka), err
	case OptKeepAliveInterval:
		var ka tcpip.KeepaliveIntervalOption
		err := fromTCPIP(s.ep.GetSockOpt(&ka))
		return int64(ka), err
	case OptKeepAliveCount:
		n, terr := s.ep.GetSockOptInt(tcpip.KeepaliveCountOption)
		return int64(n), fromTCPIP(terr)
	case OptLinger:
		l := o.GetLinger()
		if !l.Enabled {
			return -1, nil
		}
		return int64(l.Timeout), nil
	}
	return 0, ErrInvalid
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
