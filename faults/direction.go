package faults

import (
	"fmt"

	"github.com/tcplab/tcplab/harness"
)

// Direction is which way the packets a fault acts on travel.
type Direction int

// The directions of a Pair's link. Both applies a fault to each direction
// separately (two rules, two queues or two qdiscs), undone together.
const (
	ClientToServer Direction = iota + 1
	ServerToClient
	Both
)

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "client->server"
	case ServerToClient:
		return "server->client"
	case Both:
		return "both ways"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

func (d Direction) validate() error {
	if d < ClientToServer || d > Both {
		return fmt.Errorf("%w: no direction %v", ErrBadFault, d)
	}
	return nil
}

// receiver returns the host that receives packets travelling in d.
func (d Direction) receiver(p *harness.Pair) (*harness.Host, error) {
	switch d {
	case ClientToServer:
		return p.Server, nil
	case ServerToClient:
		return p.Client, nil
	}
	return nil, fmt.Errorf("%w: %v has no single receiver", ErrBadFault, d)
}

// sender returns the host that sends packets travelling in d.
func (d Direction) sender(p *harness.Pair) (*harness.Host, error) {
	switch d {
	case ClientToServer:
		return p.Client, nil
	case ServerToClient:
		return p.Server, nil
	}
	return nil, fmt.Errorf("%w: %v has no single sender", ErrBadFault, d)
}

// eachWay applies one direction's fault for d, or both directions' for
// Both (both or neither).
func eachWay(d Direction, apply func(Direction) (Active, error)) (Active, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if d != Both {
		return apply(d)
	}
	a, err := apply(ClientToServer)
	if err != nil {
		return nil, err
	}
	b, err := apply(ServerToClient)
	if err != nil {
		_ = a.Undo()
		return nil, err
	}
	return &multi{what: a.String() + " and " + b.String(), parts: []Active{a, b}}, nil
}
