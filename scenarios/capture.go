package scenarios

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcplab/tcplab/faults"
	"github.com/tcplab/tcplab/harness"
	"golang.org/x/sys/unix"
)

// snapLen is how much of each frame the capture keeps: Ethernet, IPv6 and
// the largest TCP header.
const snapLen = 14 + 40 + 60

// Frame is one packet seen on the lab's link, from the client's side.
type Frame struct {
	At       time.Time      `json:"at"`
	FromSide string         `json:"from"` // client or server
	Len      int            `json:"len"`  // on the wire
	Data     []byte         `json:"-"`    // the first snapLen bytes
	TCP      *faults.Packet `json:"tcp,omitempty"`
	Fate     string         `json:"fate,omitempty"` // "dropped by X", "held by X"...
}

// capture records every frame crossing the client's end of the link: what
// the client sends and what reaches it. (A packet dropped at the server's
// input hook is seen here, since the tap comes first; a packet netem drops
// on the sender never reaches the wire.)
type capture struct {
	fd      int
	stopped atomic.Bool
	mu      sync.Mutex
	frames  []Frame
	done    chan struct{}
}

func startCapture(h *harness.Host) (*capture, error) {
	link, err := h.Link()
	if err != nil {
		return nil, err
	}
	c := &capture{fd: -1, done: make(chan struct{})}
	proto := int(htons(unix.ETH_P_ALL))
	err = h.NS.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return os.NewSyscallError("socket AF_PACKET", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: link.Attrs().Index}); err != nil {
		_ = unix.Close(c.fd)
		return nil, os.NewSyscallError("bind AF_PACKET", err)
	}
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		_ = unix.Close(c.fd)
		return nil, os.NewSyscallError("SO_TIMESTAMPNS", err)
	}
	_ = unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50000})
	_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	go c.read(c.fd)
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read receives until stop; the socket's 50 ms receive timeout lets it
// notice.
func (c *capture) read(fd int) {
	defer close(c.done)
	buf, oob := make([]byte, snapLen), make([]byte, 128)
	for {
		n, oobn, flags, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			if c.stopped.Load() {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		_ = flags
		f := Frame{At: time.Now(), Len: n, FromSide: "server"}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			f.FromSide = "client"
		}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
					sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
					nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
					f.At = time.Unix(sec, nsec)
				}
			}
		}
		f.Data = append([]byte(nil), buf[:min(n, snapLen)]...)
		if len(f.Data) > 14 {
			if p, err := faults.ParsePacket(f.Data[14:]); err == nil && p.Proto == unix.IPPROTO_TCP {
				f.TCP = &p
			}
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.mu.Unlock()
		if c.stopped.Load() {
			return // a busy link never times out
		}
	}
}

// stop ends the capture and returns what it saw.
func (c *capture) stop() []Frame {
	c.stopped.Store(true)
	<-c.done
	_ = unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// writePcap writes frames as a pcap file (nanosecond timestamps,
// Ethernet), readable by tcpdump and Wireshark.
func writePcap(path string, frames []Frame) error {
	b := make([]byte, 0, 24+len(frames)*(16+snapLen))
	le := binary.LittleEndian
	b = le.AppendUint32(b, 0xa1b23c4d) // nanosecond pcap
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, 0) // thiszone
	b = le.AppendUint32(b, 0) // sigfigs
	b = le.AppendUint32(b, snapLen)
	b = le.AppendUint32(b, 1) // LINKTYPE_ETHERNET
	for _, f := range frames {
		b = le.AppendUint32(b, uint32(f.At.Unix()))
		b = le.AppendUint32(b, uint32(f.At.Nanosecond()))
		b = le.AppendUint32(b, uint32(len(f.Data)))
		b = le.AppendUint32(b, uint32(f.Len))
		b = append(b, f.Data...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write pcap: %w", err)
	}
	return nil
}
