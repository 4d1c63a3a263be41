// Command tcplab is the lab's command line.
//
//	tcplab states             the TCP states, their meanings and spellings
//	tcplab doctor             what this kernel offers the lab, and what is missing
//	tcplab gc [-n]            remove what killed runs left behind (and only that)
//	tcplab rootns FILE        write a snapshot of the root namespace's configuration
//	tcplab rootns -check FILE compare with an earlier snapshot; exit 1 if it changed
//
// Bad usage exits 2; -h or --help on any command prints its usage.
package main
