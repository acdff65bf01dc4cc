package notify_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
)

// policyEvent returns the i-th policy event of a shell spawned in a pod.
func policyEvent(i int) kubetrail.Event {
	return kubetrail.Event{
		Time:            time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC),
		Category:        kubetrail.CategoryPolicy,
		Type:            "execve",
		Cluster:         "prod",
		Node:            "node-1",
		Namespace:       "shop",
		WorkloadKind:    "Deployment",
		WorkloadName:    "cart",
		PodName:         "cart-7d9f-abc",
		ContainerName:   "app",
		ContainerID:     strings.Repeat("a", 64),
		ImageRepository: "ghcr.io/shop/cart",
		ImageTag:        "1.2",
		SessionID:       "node-1:4242",
		Audit:           kubetrail.Audit{UserName: "alice@example.com"},
		Alert: kubetrail.Alert{
			Policy:   "baseline",
			Rule:     "Terminal shell in container",
			Priority: "WARNING",
			Source:   "syscall",
			Output:   fmt.Sprintf("A shell was spawned in a container <#%d> (user=root shell=bash)", i),
			Tags:     []string{"container", "shell", "mitre_execution", "T1059"},
			Trigger:  fmt.Sprintf("stream-1/%d", i),
		},
	}
}

func policyEvents(n int) []kubetrail.Event {
	out := make([]kubetrail.Event, n)
	for i := range out {
		out[i] = policyEvent(i + 1)
	}
	return out
}

// counter reads a dispatcher counter from the registry it was registered on.
func counter(t *testing.T, reg *prometheus.Registry, name, action string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "action" && lp.GetValue() == action {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{action=%q} registered", name, action)
	return 0
}
