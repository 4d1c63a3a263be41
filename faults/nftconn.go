package faults

import (
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/tcplab/tcplab/harness"
)

// nsConn is one lasting nftables connection per lab namespace, shared by
// its rules and closed with the namespace: closing a netfilter netlink
// socket waits out an RCU grace period in the kernel (10-30 ms here), too
// much to pay per rule. mu serialises building and flushing a batch.
type nsConn struct {
	mu   sync.Mutex
	conn *nftables.Conn
}

var (
	connsMu sync.Mutex
	conns   = map[*harness.Namespace]*nsConn{}
)

// nftConn returns the namespace's connection, opening it on first use.
func nftConn(ns *harness.Namespace) (*nsConn, error) {
	connsMu.Lock()
	defer connsMu.Unlock()
	if c := conns[ns]; c != nil {
		return c, nil
	}
	conn, err := nftables.New(nftables.WithNetNSFd(ns.FD()), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("open nftables in %s: %w", ns, err)
	}
	c := &nsConn{conn: conn}
	conns[ns] = c
	err = ns.OnClose(func() error {
		connsMu.Lock()
		delete(conns, ns)
		connsMu.Unlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		return conn.CloseLasting()
	})
	return c, err
}
