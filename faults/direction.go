package faults

import (
	"fmt"

	"github.com/tcplab/tcplab/harness"
)

// Direction is which way the packets a fault acts on travel.
type Direction int

// The directions of a Pair's link.
const (
	ClientToServer Direction = iota + 1
	ServerToClient
)

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// receiver returns the host that receives packets travelling in d.
func (d Direction) receiver(p *harness.Pair) (*harness.Host, error) {
	switch d {
	case ClientToServer:
		return p.Server, nil
	case ServerToClient:
		return p.Client, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrBadFault, d)
}
