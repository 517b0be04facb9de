//go:build !linux

package proxy

import (
	"errors"
	"net"
)

// NodeIP returns errors.ErrUnsupported off Linux.
func NodeIP() (net.IP, error) { return nil, errors.ErrUnsupported }
