package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tcplab/tcplab/harness/tcpstate"
	"golang.org/x/sys/unix"
)

// DiagSocket is one TCP socket as sock_diag (what `ss -tan` uses) reports
// it. For a timewait mini-socket State is its substate (TIME_WAIT, or
// FIN_WAIT2 for an orphan waiting out tcp_fin_timeout) and Timewait is true;
// for a request socket State is SYN_RECV and Request is true.
type DiagSocket struct {
	Family  Family
	State   tcpstate.State
	Local   netip.AddrPort
	Remote  netip.AddrPort
	Cookie  uint64        // the socket cookie; a timewait socket keeps its full socket's
	Timer   uint8         // idiag_timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe
	Expires time.Duration // remaining time of the timer, at jiffy granularity; 0 once overdue
	Retrans uint8         // retransmissions (SYN-ACKs sent again, for a request socket)
	Inode   uint32        // 0 for timewait and request sockets (no file)
}

// Timewait reports whether this is a timewait mini-socket.
func (d DiagSocket) Timewait() bool { return d.Timer == 3 && d.Inode == 0 }

// Request reports whether this is a request socket waiting for the final
// ACK of the handshake (the kernel's TCP_NEW_SYN_RECV).
func (d DiagSocket) Request() bool {
	return d.State == tcpstate.SynRecv && d.Inode == 0
}

// Diag is a sock_diag netlink connection opened inside a namespace.
type Diag struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

// NewDiag opens a sock_diag connection in the namespace; it then reports
// that namespace's sockets whatever goroutine uses it.
func (ns *Namespace) NewDiag() (*Diag, error) {
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		return os.NewSyscallError("socket NETLINK_SOCK_DIAG", err)
	})
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("bind netlink", err)
	}
	return &Diag{fd: fd, buf: make([]byte, 256<<10)}, nil
}

// AllStates is the state mask for every TCP state.
const AllStates = ^uint32(0)

// Sockets dumps the namespace's TCP sockets of both families whose state is
// in mask (bits tcpstate.State.Mask(); AllStates for all).
// Equivalent to: `ss -tan state ...`.
func (d *Diag) Sockets(mask uint32) ([]DiagSocket, error) {
	var out []DiagSocket
	for _, f := range []Family{IPv4, IPv6} {
		var err error
		if out, err = d.dump(f, mask, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const (
	sizeofSockID  = 48
	sizeofReqV2   = 8 + sizeofSockID
	sizeofDiagMsg = 4 + sizeofSockID + 20
)

func (d *Diag) dump(f Family, mask uint32, out []DiagSocket) ([]DiagSocket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	req := d.request(f, mask, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	err := d.exchange(req, d.seq, 1, func(s DiagSocket) { out = append(out, s) })
	return out, err
}

// SocketKey names one socket for a lookup: its 4-tuple and its cookie.
type SocketKey struct {
	Local, Remote netip.AddrPort
	Cookie        uint64
}

// Lookup finds the one socket with this 4-tuple and cookie, full or
// timewait, by a hash lookup in the kernel rather than a walk of every
// hash bucket as Sockets does. ok is false when there is none.
// Equivalent to: `ss -tan src LOCAL dst REMOTE`, without the walk.
func (d *Diag) Lookup(local, remote netip.AddrPort, cookie uint64) (s DiagSocket, ok bool, err error) {
	found, err := d.LookupAll([]SocketKey{{local, remote, cookie}})
	if err != nil || len(found) == 0 {
		return DiagSocket{}, false, err
	}
	return found[0], true, nil
}

// lookupBatch bounds the lookups sent in one message: their replies, an
// skb of about a kilobyte each, must fit the socket's default receive
// buffer (208 KiB). Were it to overflow, the kernel reports ENOBUFS.
const lookupBatch = 64

// LookupAll looks up many sockets as Lookup does one, and returns those
// found. The requests go to the kernel together, a batch per message: two
// system calls per batch rather than per socket.
func (d *Diag) LookupAll(keys []SocketKey) ([]DiagSocket, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var found []DiagSocket
	for len(keys) > 0 {
		batch := keys[:min(len(keys), lookupBatch)]
		keys = keys[len(batch):]
		first := d.seq + 1
		msg := make([]byte, 0, len(batch)*(unix.NLMSG_HDRLEN+sizeofReqV2))
		for _, k := range batch {
			msg = append(msg, d.lookupRequest(k)...)
		}
		if err := d.exchange(msg, first, len(batch), func(s DiagSocket) { found = append(found, s) }); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// lookupRequest builds the exact-match request for k; the caller holds d.mu.
func (d *Diag) lookupRequest(k SocketKey) []byte {
	f := IPv4
	if k.Local.Addr().Is6() {
		f = IPv6
	}
	req := d.request(f, AllStates, unix.NLM_F_REQUEST)
	id := req[unix.NLMSG_HDRLEN+8:]
	binary.BigEndian.PutUint16(id[0:], k.Local.Port())
	binary.BigEndian.PutUint16(id[2:], k.Remote.Port())
	copy(id[4:20], addrBytes(k.Local.Addr()))
	copy(id[20:36], addrBytes(k.Remote.Addr()))
	binary.NativeEndian.PutUint32(id[40:], uint32(k.Cookie))
	binary.NativeEndian.PutUint32(id[44:], uint32(k.Cookie>>32))
	return req
}

func addrBytes(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

// request builds an inet_diag_req_v2 for TCP, numbered with the next
// sequence number; the caller holds d.mu.
func (d *Diag) request(f Family, mask uint32, flags uint16) []byte {
	d.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+sizeofReqV2)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], flags)
	ne.PutUint32(req[8:], d.seq)
	r := req[unix.NLMSG_HDRLEN:]
	r[0] = byte(f)
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], mask)
	return req
}

// exchange sends msg, holding count requests numbered from first, and
// hands every socket in the replies to each; the caller holds d.mu. A
// dump's reply ends with NLMSG_DONE. A lookup's is one message: the socket,
// or an error, where ENOENT and ESTALE (another socket on the tuple) mean
// none. Replies to an earlier exchange that failed half-way are skipped.
func (d *Diag) exchange(msg []byte, first uint32, count int, each func(DiagSocket)) error {
	if d.fd < 0 {
		return fmt.Errorf("sock_diag: %w", ErrClosed)
	}
	if err := unix.Sendto(d.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto sock_diag", err)
	}
	ne := binary.NativeEndian
	dump := ne.Uint16(msg[6:])&unix.NLM_F_DUMP != 0
	for left := count; left > 0; {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return os.NewSyscallError("recvfrom sock_diag", err)
		}
		for b := d.buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(ne.Uint32(b[0:]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("sock_diag: malformed reply")
			}
			typ, seq, data := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[unix.NLMSG_HDRLEN:l]
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
			if seq-first >= uint32(count) {
				continue
			}
			switch typ {
			case unix.NLMSG_DONE:
				left--
			case unix.NLMSG_ERROR:
				left--
				if len(data) < 4 {
					continue
				}
				e := unix.Errno(-int32(ne.Uint32(data)))
				if e != 0 && (dump || e != unix.ENOENT && e != unix.ESTALE) {
					return fmt.Errorf("sock_diag: %w", e)
				}
			default:
				if s, ok := parseDiagMsg(data); ok {
					each(s)
				}
				if !dump {
					left--
				}
			}
		}
	}
	return nil
}

func parseDiagMsg(b []byte) (DiagSocket, bool) {
	if len(b) < sizeofDiagMsg {
		return DiagSocket{}, false
	}
	ne := binary.NativeEndian
	id := b[4 : 4+sizeofSockID]
	s := DiagSocket{
		Family:  Family(b[0]),
		State:   tcpstate.State(b[1]),
		Timer:   b[2],
		Retrans: b[3],
		Cookie:  uint64(ne.Uint32(id[40:])) | uint64(ne.Uint32(id[44:]))<<32,
		Expires: time.Duration(ne.Uint32(b[52:])) * time.Millisecond,
		Inode:   ne.Uint32(b[68:]),
	}
	sport := binary.BigEndian.Uint16(id[0:])
	dport := binary.BigEndian.Uint16(id[2:])
	if s.Family == IPv4 {
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(id[4:8])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(id[20:24])), dport)
	} else {
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(id[4:20])).Unmap(), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(id[20:36])).Unmap(), dport)
	}
	return s, true
}

// Close closes the netlink connection. A second Close returns nil.
func (d *Diag) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return os.NewSyscallError("close sock_diag", err)
}
