package k8s

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubetrail/kubetrail"
)

// recorder is the sink: what the watcher observed, in order.
type recorder struct {
	mu   sync.Mutex
	objs []kubetrail.InventoryObject
}

func (r *recorder) WriteInventory(_ context.Context, objs []kubetrail.InventoryObject) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objs = append(r.objs, objs...)
	return nil
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, o := range r.objs {
		out = append(out, fmt.Sprintf("%s %s/%s %v node=%s workload=%s/%s deleted=%v", o.Kind, o.Namespace, o.Name, o.IPs, o.Node, o.WorkloadKind, o.WorkloadName, o.Deleted))
	}
	return out
}

func controller(kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(name + "-uid"), Controller: &yes}}
}

// The fake clientset stands in for the API server in this unit test (the
// real-cluster end-to-end test runs the watcher against a real one).
func TestWatcherObservesAddressesAndOwners(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "invoice-api-7d9f8", UID: "rs-uid",
		OwnerReferences: controller("Deployment", "invoice-api")}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "invoice-api-7d9f8-abcde", UID: "pod-uid", CreationTimestamp: created,
			OwnerReferences: controller("ReplicaSet", "invoice-api-7d9f8")},
		Spec:   corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}}},
	}
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "worker-abcde", UID: "orphan-uid", CreationTimestamp: created,
			Labels: map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "5c6b7"}, OwnerReferences: controller("ReplicaSet", "worker-5c6b7")},
		Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.244.1.8"}}},
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "pgbouncer", UID: "svc-uid", CreationTimestamp: created},
		Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.96.3.4"}}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "kafka", UID: "hl-uid", CreationTimestamp: created},
		Spec: corev1.ServiceSpec{ClusterIPs: []string{corev1.ClusterIPNone}}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "node-uid", CreationTimestamp: created},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.0.11"}, {Type: corev1.NodeHostName, Address: "node-1"}}}}
	// A selector-less service in front of a database outside the cluster: its
	// hand-made endpoint names that address; the pod-backed one adds nothing.
	external := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "legacy-db-abcde", UID: "eps-uid", CreationTimestamp: created,
		Labels: map[string]string{discoveryv1.LabelServiceName: "legacy-db"}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"203.0.113.5"}}}}
	backed := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "pgbouncer-xyz", UID: "eps2-uid", CreationTimestamp: created,
		Labels: map[string]string{discoveryv1.LabelServiceName: "pgbouncer"}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.7"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "x"}}}}
	client := fake.NewClientset(rs, pod, orphan, svc, headless, node, external, backed)

	rec := &recorder{}
	w := &Watcher{Cluster: "prod", Client: client, Sink: rec, FlushInterval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	initial := map[string]bool{}
	for _, l := range rec.lines() {
		initial[l] = true
	}
	for _, want := range []string{
		"pod billing/invoice-api-7d9f8-abcde [10.244.1.7] node=node-1 workload=Deployment/invoice-api deleted=false",
		// Its ReplicaSet is not in the cache: named from the pod-template-hash.
		"pod billing/worker-abcde [10.244.1.8] node= workload=Deployment/worker deleted=false",
		"service data/pgbouncer [10.96.3.4] node= workload=/ deleted=false",
		"service data/kafka [] node= workload=/ deleted=false",
		"node /node-1 [192.168.0.11] node= workload=/ deleted=false",
		"service data/legacy-db [203.0.113.5] node= workload=/ deleted=false",
		"service data/pgbouncer [] node= workload=/ deleted=false",
	} {
		if !initial[want] {
			t.Errorf("missing %q in %q", want, rec.lines())
		}
	}
	for _, o := range rec.objs {
		if o.Cluster != "prod" || !o.Time.Equal(created.Time) {
			t.Errorf("%s %s: cluster %q time %s, want prod and the creation time", o.Kind, o.Name, o.Cluster, o.Time)
		}
	}

	// A status change that moves no address is not an observation; a new address
	// and the deletion are.
	n := len(rec.lines())
	pod = pod.DeepCopy() // the clientset may share the object it was given
	pod.Status.Phase = corev1.PodRunning
	if _, err := client.CoreV1().Pods("billing").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.244.1.9"}}
	if _, err := client.CoreV1().Pods("billing").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods("billing").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pod billing/invoice-api-7d9f8-abcde [10.244.1.9] node=node-1 workload=Deployment/invoice-api deleted=false",
		"pod billing/invoice-api-7d9f8-abcde [10.244.1.9] node=node-1 workload=Deployment/invoice-api deleted=true",
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.lines()) < n+len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // and nothing more arrives
	got := rec.lines()[n:]
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the updates and the deletion:\n got %q\nwant %q", got, want)
	}
}
