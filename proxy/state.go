package proxy

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// slices the proxy reads: the k8sm scheduler's endpoints controller, whose
// addresses are host IPs and whose ports are host ports.
const ManagedBy = "k8sm-scheduler.k8sm.io"

// ServicePort is one port of one Service: what a client reaches at
// ClusterIP:Port.
type ServicePort struct {
	Namespace, Name string
	Port            string // the port's name ("" for an unnamed port)
	ClusterIP       string
	PortNumber      int32
	Protocol        v1.Protocol
	// AffinitySeconds > 0: ClientIP session affinity with this timeout.
	AffinitySeconds int32
	Endpoints       []Endpoint
}

// Key names a service port: "namespace/name:port", or "namespace/name"
// for an unnamed port (as kube-proxy names them).
func (s ServicePort) Key() string {
	if s.Port == "" {
		return s.Namespace + "/" + s.Name
	}
	return s.Namespace + "/" + s.Name + ":" + s.Port
}

// Endpoint is a HostIP:HostPort a service port spreads over.
type Endpoint struct {
	IP   string
	Port int32
	// Ready endpoints take new connections; a terminating but serving one
	// takes them only when no endpoint is ready (as kube-proxy does).
	Ready, Serving, Terminating bool
}

// Addr is "ip:port".
func (e Endpoint) Addr() string { return net.JoinHostPort(e.IP, strconv.Itoa(int(e.Port))) }

// usable are the endpoints new connections go to: the ready ones, or, when
// none is ready, the serving terminating ones.
func (s ServicePort) usable() []Endpoint {
	var ready, fallback []Endpoint
	for _, e := range s.Endpoints {
		switch {
		case e.Ready:
			ready = append(ready, e)
		case e.Serving && e.Terminating:
			fallback = append(fallback, e)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return fallback
}

// BuildState turns Services and EndpointSlices into the service ports the
// proxy programs, sorted by key. Services without a cluster IP (headless,
// ExternalName) are left out; so are slices not managed by k8sm, of another
// address family, or of an unknown service. Each service port gets the
// endpoints of every slice port with its name and protocol.
func BuildState(services []*v1.Service, slices []*discoveryv1.EndpointSlice) []ServicePort {
	type portKey struct {
		ns, svc, port string
		proto         v1.Protocol
	}
	eps := map[portKey][]Endpoint{}
	seen := map[portKey]map[string]bool{}
	for _, sl := range slices {
		if sl.Labels[discoveryv1.LabelManagedBy] != ManagedBy || sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		svc := sl.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		for _, p := range sl.Ports {
			if p.Port == nil {
				continue
			}
			k := portKey{sl.Namespace, svc, "", v1.ProtocolTCP}
			if p.Name != nil {
				k.port = *p.Name
			}
			if p.Protocol != nil {
				k.proto = *p.Protocol
			}
			for _, ep := range sl.Endpoints {
				for _, ip := range ep.Addresses {
					e := Endpoint{IP: ip, Port: *p.Port,
						Ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
						Serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
						Terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating}
					if net.ParseIP(ip).To4() == nil {
						continue
					}
					if seen[k] == nil {
						seen[k] = map[string]bool{}
					}
					if seen[k][e.Addr()] { // the same endpoint in two slices
						continue
					}
					seen[k][e.Addr()] = true
					eps[k] = append(eps[k], e)
				}
			}
		}
	}
	var out []ServicePort
	for _, svc := range services {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == v1.ClusterIPNone || net.ParseIP(ip).To4() == nil || svc.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		affinity := int32(0)
		if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
			affinity = v1.DefaultClientIPServiceAffinitySeconds
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
				affinity = *c.ClientIP.TimeoutSeconds
			}
		}
		for _, p := range svc.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = v1.ProtocolTCP
			}
			e := append([]Endpoint(nil), eps[portKey{svc.Namespace, svc.Name, p.Name, proto}]...)
			sort.Slice(e, func(i, j int) bool { return e[i].Addr() < e[j].Addr() })
			out = append(out, ServicePort{Namespace: svc.Namespace, Name: svc.Name, Port: p.Name, ClusterIP: ip,
				PortNumber: p.Port, Protocol: proto, AffinitySeconds: affinity, Endpoints: e})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key() != out[j].Key() {
			return out[i].Key() < out[j].Key()
		}
		return out[i].Protocol < out[j].Protocol
	})
	return out
}

// String is for logs.
func (s ServicePort) String() string {
	return fmt.Sprintf("%s %s:%d/%s (%d endpoints)", s.Key(), s.ClusterIP, s.PortNumber, s.Protocol, len(s.Endpoints))
}
