package ingest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/duckdb"
	"github.com/kubetrail/kubetrail/ingest"
)

// An agent knows a pod from the container runtime, not the Deployment behind
// it; the inventory (here from the API watcher) names it, also after a restart
// of the server and after the pod is deleted.
func TestPipelineNamesWorkloadsFromInventory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trail.duckdb")
	store, err := duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.New(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if err := p.WriteInventory(ctx, []kubetrail.InventoryObject{
		{Time: t0, Cluster: "prod", Kind: kubetrail.ObjectPod, Namespace: "billing", Name: "invoice-api-7d9f8-abcde", UID: "uid-1",
			IPs: []string{"10.244.1.7"}, WorkloadKind: "Deployment", WorkloadName: "invoice-api"},
		{Time: t0.Add(time.Minute), Cluster: "prod", Kind: kubetrail.ObjectPod, Namespace: "billing", Name: "invoice-api-7d9f8-abcde", UID: "uid-1",
			IPs: []string{"10.244.1.7"}, WorkloadKind: "Deployment", WorkloadName: "invoice-api", Deleted: true},
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	store, err = duckdb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if p, err = ingest.New(ctx, store, nil); err != nil {
		t.Fatal(err)
	}
	ev := kubetrail.Event{Stream: "node-1.a", Seq: 1, Time: t0.Add(30 * time.Second), Category: kubetrail.CategoryProcess, Type: "execve",
		Cluster: "prod", Node: "node-1", Namespace: "billing", PodName: "invoice-api-7d9f8-abcde", PodUID: "uid-1", ContainerID: "c1",
		Process: kubetrail.Process{Name: "sh", Argv: []string{"sh"}, PID: 7}}
	if _, err := p.WriteBatch(ctx, &kubetrail.Batch{Stream: "node-1.a", Events: []kubetrail.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Event(ctx, "node-1.a/1")
	if err != nil {
		t.Fatal(err)
	}
	if got.WorkloadKind != "Deployment" || got.WorkloadName != "invoice-api" {
		t.Errorf("workload %q %q, want Deployment invoice-api", got.WorkloadKind, got.WorkloadName)
	}
}
