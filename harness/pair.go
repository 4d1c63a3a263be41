package harness

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Family selects IPv4 or IPv6 for an endpoint.
type Family int

// The address families every spec runs in.
const (
	IPv4 Family = unix.AF_INET
	IPv6 Family = unix.AF_INET6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// LinkName is the name of the lab interface inside each host's namespace.
const LinkName = "eth0"

// Host is one end of a Pair: a namespace, its veth end and its addresses.
type Host struct {
	Name string // "client" or "server", for reports
	NS   *Namespace
	V4   netip.Prefix
	V6   netip.Prefix
}

// Addr returns the host's address in the family.
func (h *Host) Addr(f Family) netip.Addr {
	if f == IPv6 {
		return h.V6.Addr()
	}
	return h.V4.Addr()
}

// Link returns the host's lab interface.
func (h *Host) Link() (netlink.Link, error) {
	l, err := h.NS.Handle().LinkByName(LinkName)
	if err != nil {
		return nil, fmt.Errorf("%s: find %s: %w", h.Name, LinkName, err)
	}
	return l, nil
}

// PairOptions configures NewPair. The zero value is a 1500-byte link.
type PairOptions struct {
	MTU int // 0 means 1500
}

// Pair is a client and a server namespace joined by one veth pair, each end
// up with an IPv4 and an IPv6 address. Nothing of it exists in the root
// namespace.
type Pair struct {
	Client, Server *Host
	slot           *Slot
}

// NewPair builds the lab's common case without running any command.
// Equivalent to:
//
//	ip netns add C; ip netns add S
//	ip -n C link add eth0 mtu $MTU type veth peer name eth0 netns S
//	ip -n C addr add 198.18.x.1/30 dev eth0; ip -n S addr add 198.18.x.2/30 dev eth0
//	ip -n C addr add 2001:2:0:x::1/64 dev eth0 nodad  (and ::2 in S)
//	ip -n C link set eth0 up gso_max_segs 1; the same in S; lo up in both
func NewPair(opts PairOptions) (*Pair, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	slot, err := AcquireSlot()
	if err != nil {
		return nil, err
	}
	return newPairAt(opts, slot)
}

// newPairAt builds a pair on the given slot's addresses; the pair owns the
// slot from then on.
func newPairAt(opts PairOptions, slot *Slot) (p *Pair, err error) {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = 1500
	}
	if mtu < 1280 || mtu > 65535 {
		return nil, errors.Join(fmt.Errorf("mtu %d: must be 1280..65535 (IPv6 needs 1280)", mtu), slot.Close())
	}
	p = &Pair{slot: slot}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
			p = nil
		}
	}()
	p.Client = &Host{Name: "client", V4: p.slot.V4(1), V6: p.slot.V6(1)}
	p.Server = &Host{Name: "server", V4: p.slot.V4(2), V6: p.slot.V6(2)}
	// Namespace creation is the kernel's slowest step and runs in
	// parallel (copy_net_ns takes pernet_ops_rwsem for reading).
	var serverErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Server.NS, serverErr = NewNamespace()
	}()
	p.Client.NS, err = NewNamespace()
	<-done
	if err != nil || serverErr != nil {
		return p, errors.Join(err, serverErr)
	}
	veth := &netlink.Veth{
		LinkAttrs:       netlink.LinkAttrs{Name: LinkName, MTU: mtu, GSOMaxSegs: 1, NumTxQueues: 1, NumRxQueues: 1},
		PeerName:        LinkName,
		PeerNamespace:   netlink.NsFd(p.Server.NS.FD()),
		PeerMTU:         uint32(mtu),
		PeerNumTxQueues: 1,
		PeerNumRxQueues: 1,
	}
	if err := p.Client.NS.Handle().LinkAdd(veth); err != nil {
		return p, fmt.Errorf("add veth pair: %w", err)
	}
	links := make([]netlink.Link, 2)
	for i, h := range []*Host{p.Client, p.Server} {
		if links[i], err = h.configure(); err != nil {
			return p, err
		}
	}
	if err := p.Client.addNeighbours(links[0], p.Server, links[1]); err != nil {
		return p, err
	}
	if err := p.Server.addNeighbours(links[1], p.Client, links[0]); err != nil {
		return p, err
	}
	return p, nil
}

// addNeighbours makes h's neighbour entries for the peer's addresses
// permanent, so no ARP or neighbour discovery ever runs in the lab: the
// first SYN leaves at once (a race of ND with a fresh link otherwise loses
// it now and then, costing a 1 s retransmission) and packet filters count
// only TCP. Equivalent to: `ip neigh replace ADDR lladdr MAC dev eth0 nud permanent`.
func (h *Host) addNeighbours(link netlink.Link, peer *Host, peerLink netlink.Link) error {
	for _, a := range []netip.Addr{peer.V4.Addr(), peer.V6.Addr()} {
		n := &netlink.Neigh{
			LinkIndex:    link.Attrs().Index,
			State:        netlink.NUD_PERMANENT,
			IP:           a.AsSlice(),
			HardwareAddr: peerLink.Attrs().HardwareAddr,
		}
		if err := h.NS.Handle().NeighSet(n); err != nil {
			return fmt.Errorf("%s: add neighbour %s: %w", h.Name, a, err)
		}
	}
	return nil
}

func (h *Host) configure() (netlink.Link, error) {
	nh := h.NS.Handle()
	link, err := h.Link()
	if err != nil {
		return nil, err
	}
	// One wire-sized segment per skb, so packet rules see what the wire
	// would carry and a FIN never rides a 64 KiB GSO block. (The client
	// end got it at creation; netlink cannot set it on the peer there.)
	if link.Attrs().GSOMaxSegs != 1 {
		if err := nh.LinkSetGSOMaxSegs(link, 1); err != nil {
			return nil, fmt.Errorf("%s: set gso_max_segs: %w", h.Name, err)
		}
	}
	for _, pfx := range []netip.Prefix{h.V4, h.V6} {
		addr := &netlink.Addr{IPNet: prefixToIPNet(pfx)}
		if pfx.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once, no 1 s of DAD
		}
		if err := nh.AddrAdd(link, addr); err != nil {
			return nil, fmt.Errorf("%s: add address %s: %w", h.Name, pfx, err)
		}
	}
	if err := nh.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("%s: set %s up: %w", h.Name, LinkName, err)
	}
	return link, nil
}

// Hosts returns the client and the server.
func (p *Pair) Hosts() []*Host { return []*Host{p.Client, p.Server} }

// Close destroys both namespaces (and with them the veth pair) and frees
// the address slot. Sockets still open keep their namespace alive until
// they are closed. A second Close returns nil.
func (p *Pair) Close() error {
	var errs []error
	for _, h := range []*Host{p.Client, p.Server} {
		if h != nil && h.NS != nil {
			errs = append(errs, h.NS.Close())
		}
	}
	if p.slot != nil {
		errs = append(errs, p.slot.Close())
	}
	return errors.Join(errs...)
}
