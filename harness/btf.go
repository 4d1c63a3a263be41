package harness

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// sockLayout holds the offsets the tracer needs, looked up by name in the
// running kernel's BTF; never hard-coded, since struct layouts move between
// versions and several skc_* fields sit in anonymous unions.
type sockLayout struct {
	family, num, dport, daddr, rcvSaddr, v6Daddr, v6RcvSaddr uint32
	skcNet, protocol, netCookie                              uint32
	rawLen                                                   uint32 // bytes of sock_common copied per event
	// flags is sk_flags' offset and done the bit of SOCK_DONE in it,
	// which tcp_fin() sets when the peer's FIN arrives (RCV_SHUTDOWN in
	// sk_shutdown would not do: close() sets it on every orphan). flags
	// is 0 where BTF lacks either: whether the FIN had arrived is then
	// unknown.
	flags, done uint32
}

func loadSockLayout() (*sockLayout, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("kernel BTF (CONFIG_DEBUG_INFO_BTF): %w: %w", ErrNotSupported, err)
	}
	var sock, net *btf.Struct
	if err := spec.TypeByName("sock", &sock); err != nil {
		return nil, fmt.Errorf("btf struct sock: %w", err)
	}
	if err := spec.TypeByName("net", &net); err != nil {
		return nil, fmt.Errorf("btf struct net: %w", err)
	}
	l := &sockLayout{}
	fields := []struct {
		st   *btf.Struct
		name string
		dst  *uint32
	}{
		{sock, "skc_family", &l.family},
		{sock, "skc_num", &l.num},
		{sock, "skc_dport", &l.dport},
		{sock, "skc_daddr", &l.daddr},
		{sock, "skc_rcv_saddr", &l.rcvSaddr},
		{sock, "skc_v6_daddr", &l.v6Daddr},
		{sock, "skc_v6_rcv_saddr", &l.v6RcvSaddr},
		{sock, "skc_net", &l.skcNet},
		{sock, "sk_protocol", &l.protocol},
		{net, "net_cookie", &l.netCookie},
	}
	for _, f := range fields {
		off, err := memberOffset(f.st, f.name)
		if err != nil {
			return nil, fmt.Errorf("btf %s.%s: %w", f.st.Name, f.name, err)
		}
		*f.dst = off
	}
	// Optional: the recorder only dates TIME_WAIT less exactly without.
	// sk_flags is a macro for __sk_common.skc_flags in today's kernels.
	off, err := memberOffset(sock, "skc_flags")
	if err != nil {
		off, err = memberOffset(sock, "sk_flags")
	}
	if err == nil {
		var flags *btf.Enum
		if spec.TypeByName("sock_flags", &flags) == nil {
			for _, v := range flags.Values {
				if v.Name == "SOCK_DONE" && v.Value < 64 {
					l.flags, l.done = off, uint32(v.Value)
				}
			}
		}
	}
	end := max(l.family+2, l.num+2, l.dport+2, l.daddr+4, l.rcvSaddr+4, l.v6Daddr+16, l.v6RcvSaddr+16)
	l.rawLen = (end + 7) &^ 7
	if l.rawLen > 256 {
		return nil, fmt.Errorf("sock_common addresses end at %d bytes: unexpected layout: %w", end, ErrNotSupported)
	}
	return l, nil
}

var errNoMember = errors.New("no such member")

// memberOffset finds a member by name, descending into anonymous structs
// and unions and into the first named member (__sk_common), and returns its
// byte offset. Bitfields are refused: the program reads whole bytes.
func memberOffset(st btf.Type, name string) (uint32, error) {
	for _, m := range members(st) {
		if m.Name == name {
			if m.BitfieldSize != 0 || m.Offset%8 != 0 {
				return 0, fmt.Errorf("%s is a bitfield: %w", name, ErrNotSupported)
			}
			return uint32(m.Offset / 8), nil
		}
		inner := btf.UnderlyingType(m.Type)
		if members(inner) == nil || (m.Name != "" && m.Name != "__sk_common") {
			continue
		}
		if off, err := memberOffset(inner, name); err == nil {
			return uint32(m.Offset/8) + off, nil
		}
	}
	return 0, errNoMember
}

func members(t btf.Type) []btf.Member {
	switch t := t.(type) {
	case *btf.Struct:
		return t.Members
	case *btf.Union:
		return t.Members
	}
	return nil
}
