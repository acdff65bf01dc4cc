package ingest

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/kubetrail/kubetrail"
)

// PeerIndex answers "what was this IP in the cluster at that time" from the history
// of inventory observations. It lives in memory (a cluster's pods, services and
// nodes over the retention period are small) and is rebuilt from the store on start.
type PeerIndex struct {
	mu       sync.RWMutex
	clusters map[string]map[netip.Addr][]interval
}

// interval is one owner of an address: [from, to), to zero while still owned.
type interval struct {
	from, to time.Time
	owner    owner
}

type owner struct {
	kind, namespace, name, workload string
}

// same reports whether o and p are one object; a deletion record need not repeat
// the workload.
func (o owner) same(p owner) bool {
	return o.kind == p.kind && o.namespace == p.namespace && o.name == p.name
}

// NewPeerIndex returns an empty index.
func NewPeerIndex() *PeerIndex {
	return &PeerIndex{clusters: map[string]map[netip.Addr][]interval{}}
}

// Observe adds observations; they must come in time order per address, as the
// store returns them and as senders produce them.
func (x *PeerIndex) Observe(objs []kubetrail.InventoryObject) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range objs {
		o := &objs[i]
		addrs := x.clusters[o.Cluster]
		if addrs == nil {
			addrs = map[netip.Addr][]interval{}
			x.clusters[o.Cluster] = addrs
		}
		who := owner{kind: o.Kind, namespace: o.Namespace, name: o.Name, workload: o.WorkloadName}
		for _, s := range o.IPs {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			ip = ip.Unmap()
			ivs := addrs[ip]
			last := len(ivs) - 1
			if o.Deleted {
				if last >= 0 && ivs[last].owner.same(who) && ivs[last].to.IsZero() {
					ivs[last].to = o.Time
				}
				continue
			}
			if last >= 0 && ivs[last].to.IsZero() {
				if ivs[last].owner.same(who) {
					continue // seen again, still the same owner
				}
				if ivs[last].owner.kind == kubetrail.ObjectNode && o.Kind == kubetrail.ObjectPod {
					// A host-network pod shares its node's address; the address
					// stays the node's, before, during and after the pod.
					continue
				}
				ivs[last].to = o.Time // the address moved to a new owner
			}
			addrs[ip] = append(ivs, interval{from: o.Time, owner: who})
		}
	}
}

// Resolve names addr as it was in cluster at t. Loopback addresses are the pod or
// host itself; an address the cluster never owned, or not at t, is unknown. With no
// inventory at all for the cluster nothing can be said, and ok is false.
func (x *PeerIndex) Resolve(cluster, addr string, t time.Time) (kubetrail.Peer, bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return kubetrail.Peer{}, false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() {
		return kubetrail.Peer{Kind: kubetrail.PeerLoopback}, true
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	addrs, ok := x.clusters[cluster]
	if !ok {
		return kubetrail.Peer{}, false
	}
	ivs := addrs[ip]
	// The last interval that started at or before t.
	i := sort.Search(len(ivs), func(i int) bool { return ivs[i].from.After(t) }) - 1
	if i < 0 || (!ivs[i].to.IsZero() && !t.Before(ivs[i].to)) {
		return kubetrail.Peer{Kind: kubetrail.PeerUnknown}, true
	}
	o := ivs[i].owner
	return kubetrail.Peer{Kind: o.kind, Namespace: o.namespace, Name: o.name, Workload: o.workload}, true
}
