//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// NodeIP is the node's IPv4 address as the network sees it: the first
// address of the interface the default route goes out of (netlink).
func NodeIP() (net.IP, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("node IP: list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil && (!r.Dst.IP.IsUnspecified() || !isZeroMask(r.Dst.Mask)) {
			continue // not the default route
		}
		if r.Src != nil && !r.Src.IsUnspecified() {
			return r.Src, nil
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			return nil, fmt.Errorf("node IP: interface of the default route: %w", err)
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("node IP: addresses of %s: %w", link.Attrs().Name, err)
		}
		for _, a := range addrs {
			if a.IP.IsGlobalUnicast() {
				return a.IP, nil
			}
		}
		return nil, fmt.Errorf("node IP: the default route's interface %s has no IPv4 address", link.Attrs().Name)
	}
	return nil, errors.New("node IP: no IPv4 default route (give the address by flag)")
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}
