// Package k8s keeps kubetrail's inventory of a cluster from the Kubernetes API:
// pods, services (and their endpoints outside the cluster's pods) and nodes,
// and the owners that name a pod's workload, watched
// with client-go informers. Every change of an object's addresses or owner
// becomes an inventory observation, kept after the object is deleted, so that
// the remote end of any connection can be named as it was at the time, and the
// workload of a pod's events known, after the pod is gone.
package k8s

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubetrail/kubetrail"
)

// Sink takes inventory observations; the ingest pipeline is one.
type Sink interface {
	WriteInventory(ctx context.Context, objs []kubetrail.InventoryObject) error
}

// Watcher turns the API server's view of a cluster into inventory observations.
type Watcher struct {
	Cluster string
	Client  kubernetes.Interface
	Sink    Sink
	Log     *slog.Logger
	// FlushInterval is how often observations are handed to the sink (default 1 s).
	FlushInterval time.Duration

	mu      sync.Mutex
	last    map[types.UID]string // what was last observed of each object
	pending []kubetrail.InventoryObject

	replicaSets appslisters.ReplicaSetLister
	jobs        batchlisters.JobLister
}

// Run watches until ctx ends. It returns once the informers have synced and
// the first observations are written, or with the error that prevented it; the
// watch then goes on in the background until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.FlushInterval <= 0 {
		w.FlushInterval = time.Second
	}
	w.last = map[types.UID]string{}
	f := informers.NewSharedInformerFactory(w.Client, 0)
	// The owners first: a pod observed before its ReplicaSet is known would be
	// put down to the ReplicaSet rather than its Deployment.
	w.replicaSets = f.Apps().V1().ReplicaSets().Lister()
	w.jobs = f.Batch().V1().Jobs().Lister()
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("list %v from the API server: %w", typ, context.Cause(ctx))
		}
	}
	var handlers []cache.InformerSynced
	for _, inf := range []cache.SharedIndexInformer{f.Core().V1().Pods().Informer(), f.Core().V1().Services().Informer(),
		f.Core().V1().Nodes().Informer(), f.Discovery().V1().EndpointSlices().Informer()} {
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			AddFunc:    func(obj any, initial bool) { w.observe(obj, initial, false) },
			UpdateFunc: func(_, obj any) { w.observe(obj, false, false) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				w.observe(obj, false, true)
			},
		})
		if err != nil {
			return fmt.Errorf("watch the cluster: %w", err)
		}
		handlers = append(handlers, reg.HasSynced)
	}
	f.Start(ctx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("list %v from the API server: %w", typ, context.Cause(ctx))
		}
	}
	// The handlers see the initial lists after the caches have them: wait for
	// that, so that the first write holds the whole cluster.
	if !cache.WaitForCacheSync(ctx.Done(), handlers...) {
		return fmt.Errorf("observe the cluster's objects: %w", context.Cause(ctx))
	}
	if err := w.flush(ctx); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(w.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				w.flush(context.WithoutCancel(ctx))
				return
			case <-t.C:
				if err := w.flush(ctx); err != nil && ctx.Err() == nil {
					w.Log.Warn("store inventory observations; retrying", "err", err)
				}
			}
		}
	}()
	return nil
}

// flush hands pending observations to the sink; on failure they are kept for
// the next try.
func (w *Watcher) flush(ctx context.Context) error {
	w.mu.Lock()
	objs := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(objs) == 0 {
		return nil
	}
	if err := w.Sink.WriteInventory(ctx, objs); err != nil {
		w.mu.Lock()
		w.pending = append(objs, w.pending...)
		w.mu.Unlock()
		return err
	}
	return nil
}

// observe records obj when what it says about addresses or ownership changed.
func (w *Watcher) observe(obj any, initial, deleted bool) {
	o, ok := w.inventoryObject(obj)
	if !ok {
		return
	}
	o.Cluster = w.Cluster
	o.Deleted = deleted
	meta, _ := obj.(metav1.Object)
	o.Time = time.Now().UTC()
	if initial {
		// Objects that existed before kubetrail watched: their addresses have been
		// theirs since about their creation.
		o.Time = meta.GetCreationTimestamp().UTC()
	}
	key := fmt.Sprint(o.Kind, o.Namespace, o.Name, o.IPs, o.Node, o.WorkloadKind, o.WorkloadName, o.Deleted)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last[meta.GetUID()] == key {
		return // a status change that moved nothing kubetrail keeps
	}
	if deleted {
		delete(w.last, meta.GetUID())
	} else {
		w.last[meta.GetUID()] = key
	}
	w.pending = append(w.pending, o)
}

func (w *Watcher) inventoryObject(obj any) (kubetrail.InventoryObject, bool) {
	switch x := obj.(type) {
	case *corev1.Pod:
		o := kubetrail.InventoryObject{Kind: kubetrail.ObjectPod, Namespace: x.Namespace, Name: x.Name, UID: string(x.UID), Node: x.Spec.NodeName}
		if !x.Spec.HostNetwork { // a host-network pod's address is its node's
			for _, ip := range x.Status.PodIPs {
				o.IPs = append(o.IPs, ip.IP)
			}
		}
		o.WorkloadKind, o.WorkloadName = w.workloadOf(x)
		return o, true
	case *corev1.Service:
		o := kubetrail.InventoryObject{Kind: kubetrail.ObjectService, Namespace: x.Namespace, Name: x.Name, UID: string(x.UID)}
		for _, ip := range x.Spec.ClusterIPs {
			if ip != "" && ip != corev1.ClusterIPNone {
				o.IPs = append(o.IPs, ip)
			}
		}
		o.IPs = append(o.IPs, x.Spec.ExternalIPs...)
		return o, true
	case *discoveryv1.EndpointSlice:
		// A service's endpoints that are no pod (a selector-less service in
		// front of a database outside the cluster, say) name those addresses
		// after the service; pods' addresses are named by the pods themselves.
		name := x.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			name = x.Name
		}
		o := kubetrail.InventoryObject{Kind: kubetrail.ObjectService, Namespace: x.Namespace, Name: name, UID: string(x.UID)}
		for _, ep := range x.Endpoints {
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				continue
			}
			o.IPs = append(o.IPs, ep.Addresses...)
		}
		slices.Sort(o.IPs)
		return o, true
	case *corev1.Node:
		o := kubetrail.InventoryObject{Kind: kubetrail.ObjectNode, Name: x.Name, UID: string(x.UID)}
		for _, a := range x.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				o.IPs = append(o.IPs, a.Address)
			}
		}
		slices.Sort(o.IPs)
		o.IPs = slices.Compact(o.IPs)
		return o, true
	}
	return kubetrail.InventoryObject{}, false
}

// workloadOf names the workload that runs a pod, following owners as the
// controllers set them: a Deployment through its ReplicaSet, a CronJob through
// its Job. An owner not in the cache yet is named by its own kind, or for a
// ReplicaSet of a Deployment, by the pod-template-hash the name carries.
func (w *Watcher) workloadOf(p *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return "", ""
	}
	switch ref.Kind {
	case "ReplicaSet":
		if rs, err := w.replicaSets.ReplicaSets(p.Namespace).Get(ref.Name); err == nil {
			if owner := metav1.GetControllerOf(rs); owner != nil {
				return owner.Kind, owner.Name
			}
			return "ReplicaSet", rs.Name
		}
		if h := p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
			return "Deployment", strings.TrimSuffix(ref.Name, "-"+h)
		}
	case "Job":
		if j, err := w.jobs.Jobs(p.Namespace).Get(ref.Name); err == nil {
			if owner := metav1.GetControllerOf(j); owner != nil {
				return owner.Kind, owner.Name
			}
		}
	}
	return ref.Kind, ref.Name
}
