package ingest

import (
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

func TestPeerIndexNamesAddressesAsTheyWere(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	x := NewPeerIndex()
	x.Observe([]kubetrail.InventoryObject{
		{Time: t0, Cluster: "c", Kind: "node", Name: "node-1", IPs: []string{"192.168.1.10"}},
		{Time: t0, Cluster: "c", Kind: "pod", Namespace: "billing", Name: "api-1", IPs: []string{"10.244.1.5"}, WorkloadName: "api"},
		{Time: t0, Cluster: "c", Kind: "service", Namespace: "data", Name: "postgres", IPs: []string{"10.96.0.20"}},
		// A host-network pod shares its node's address.
		{Time: t0.Add(time.Minute), Cluster: "c", Kind: "pod", Namespace: "kube-system", Name: "kube-proxy-x", IPs: []string{"192.168.1.10"}},
		{Time: t0.Add(10 * time.Minute), Cluster: "c", Kind: "pod", Namespace: "billing", Name: "api-1", IPs: []string{"10.244.1.5"}, Deleted: true},
		// The address is reused by another pod later.
		{Time: t0.Add(20 * time.Minute), Cluster: "c", Kind: "pod", Namespace: "frontend", Name: "web-9", IPs: []string{"10.244.1.5"}, WorkloadName: "web"},
	})
	cases := []struct {
		cluster, ip string
		at          time.Duration
		want        kubetrail.Peer
		ok          bool
	}{
		{"c", "10.244.1.5", 5 * time.Minute, kubetrail.Peer{Kind: "pod", Namespace: "billing", Name: "api-1", Workload: "api"}, true},
		{"c", "10.244.1.5", 15 * time.Minute, kubetrail.Peer{Kind: "unknown"}, true},
		{"c", "10.244.1.5", 25 * time.Minute, kubetrail.Peer{Kind: "pod", Namespace: "frontend", Name: "web-9", Workload: "web"}, true},
		{"c", "10.244.1.5", -time.Minute, kubetrail.Peer{Kind: "unknown"}, true},
		{"c", "10.96.0.20", time.Hour, kubetrail.Peer{Kind: "service", Namespace: "data", Name: "postgres"}, true},
		{"c", "192.168.1.10", 5 * time.Minute, kubetrail.Peer{Kind: "node", Name: "node-1"}, true},
		{"c", "185.220.101.47", 5 * time.Minute, kubetrail.Peer{Kind: "unknown"}, true},
		{"c", "127.0.0.1", 5 * time.Minute, kubetrail.Peer{Kind: "loopback"}, true},
		{"c", "::ffff:10.96.0.20", time.Hour, kubetrail.Peer{Kind: "service", Namespace: "data", Name: "postgres"}, true},
		{"other", "10.96.0.20", time.Hour, kubetrail.Peer{}, false}, // nothing known of that cluster
	}
	for _, c := range cases {
		got, ok := x.Resolve(c.cluster, c.ip, t0.Add(c.at))
		if got != c.want || ok != c.ok {
			t.Errorf("%s %s at +%s: got %+v %v, want %+v %v", c.cluster, c.ip, c.at, got, ok, c.want, c.ok)
		}
	}
}
