package kubetrail

import (
	"context"
	"time"
)

// Inventory object kinds: the cluster objects that own IP addresses.
const (
	ObjectPod     = "pod"
	ObjectService = "service"
	ObjectNode    = "node"
)

// InventoryObject is one observation of a cluster object that owns IP addresses: a
// pod with its IPs, a service with its cluster IPs, a node with its addresses. The
// history of these observations lets the server name the remote end of any
// connection as it was at the time, long after the object is gone.
type InventoryObject struct {
	Time         time.Time `json:"time"`
	Cluster      string    `json:"cluster"`
	Kind         string    `json:"kind"` // pod, service or node
	Namespace    string    `json:"namespace,omitempty"`
	Name         string    `json:"name"`
	UID          string    `json:"uid,omitempty"`
	IPs          []string  `json:"ips,omitempty"`
	Node         string    `json:"node,omitempty"` // for pods, where they run
	WorkloadKind string    `json:"workloadKind,omitempty"`
	WorkloadName string    `json:"workloadName,omitempty"`
	// Deleted marks the end of the object's life: from Time on its IPs are free.
	Deleted bool `json:"deleted,omitempty"`
}

// Peer is what an IP address was in a cluster at one moment.
type Peer struct {
	Kind      string // pod, service, node or unknown
	Namespace string
	Name      string
	Workload  string
}

// InventoryStore keeps the history of inventory observations.
type InventoryStore interface {
	WriteInventory(ctx context.Context, objs []InventoryObject) error
	// Inventory returns every observation since t (all of them for a zero t), in time order.
	Inventory(ctx context.Context, since time.Time) ([]InventoryObject, error)
}
