package ingest

import (
	"sync"

	"github.com/kubetrail/kubetrail"
)

// workloadIndex names the workload of a pod's events: an agent learns the pod
// from the container runtime, which does not know the Deployment or CronJob
// behind it; the inventory (from the API watcher, or a sender's own) does.
type workloadIndex struct {
	mu   sync.RWMutex
	pods map[podRef]workload
}

type podRef struct{ cluster, uid string }

type workload struct{ kind, name string }

func newWorkloadIndex() *workloadIndex { return &workloadIndex{pods: map[podRef]workload{}} }

func (x *workloadIndex) observe(objs []kubetrail.InventoryObject) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range objs {
		o := &objs[i]
		// Deleted pods stay: their events arrive late, and are read long after.
		if o.Kind == kubetrail.ObjectPod && o.UID != "" && o.WorkloadName != "" {
			x.pods[podRef{o.Cluster, o.UID}] = workload{o.WorkloadKind, o.WorkloadName}
		}
	}
}

// name fills in the workload of events that lack one.
func (x *workloadIndex) name(events []kubetrail.Event) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for i := range events {
		e := &events[i]
		if e.PodUID == "" || e.WorkloadName != "" {
			continue
		}
		if w, ok := x.pods[podRef{e.Cluster, e.PodUID}]; ok {
			e.WorkloadKind, e.WorkloadName = w.kind, w.name
		}
	}
}
