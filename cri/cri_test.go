package cri

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSplitImage(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ ref, repo, tag string }{
		{"kubetrail.test/busybox:1", "kubetrail.test/busybox", "1"},
		{"nginx", "nginx", ""},
		{"docker.io/library/nginx:1.27", "docker.io/library/nginx", "1.27"},
		{"localhost:5000/app", "localhost:5000/app", ""},
		{"localhost:5000/app:v2", "localhost:5000/app", "v2"},
		{"ghcr.io/x/app@" + d, "ghcr.io/x/app", d},
		{"ghcr.io/x/app:v1@" + d, "ghcr.io/x/app", "v1@" + d},
		{d, "", d},
		{"", "", ""},
	} {
		repo, tag := SplitImage(tc.ref)
		if repo != tc.repo || tag != tc.tag {
			t.Errorf("SplitImage(%q) = %q, %q; want %q, %q", tc.ref, repo, tag, tc.repo, tc.tag)
		}
	}
}

func TestDialEndpoint(t *testing.T) {
	for _, ep := range []string{"tcp://127.0.0.1:1", "unix://", "relative.sock"} {
		if c, err := Dial(context.Background(), ep); err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", ep)
		}
	}
}

// TestRuntimeDown checks that a runtime that is not there costs a lookup little
// time, and later lookups none.
func TestRuntimeDown(t *testing.T) {
	c, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, ok, err := c.Lookup(context.Background(), strings.Repeat("ab", 32))
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Errorf("lookup %d took %v", i, took)
		}
		if ok || !errors.Is(err, ErrUnavailable) {
			t.Errorf("lookup %d: ok=%v err=%v; want ErrUnavailable", i, ok, err)
		}
	}
	if err := c.Refresh(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("refresh: %v; want ErrUnavailable", err)
	}
}

func TestLRU(t *testing.T) {
	c, err := Dial(context.Background(), "/nonexistent.sock", WithCacheSize(2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range []string{"a", "b"} {
		c.put(entry{id: id, found: true, info: Info{ContainerID: id}})
	}
	c.get("a") // a is now more recent than b
	c.put(entry{id: "c", found: true, info: Info{ContainerID: "c"}})
	for id, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, ok := c.get(id); ok != want {
			t.Errorf("cached %s = %v, want %v", id, ok, want)
		}
	}
	// A "not found" answer expires; a found one does not.
	c.size = 10 // no evictions from here on
	now := time.Now()
	c.now = func() time.Time { return now }
	c.put(entry{id: "gone", expires: c.expiry(false)})
	if _, ok := c.get("gone"); !ok {
		t.Error("negative entry not cached")
	}
	now = now.Add(notFoundTTL)
	if _, ok := c.get("gone"); ok {
		t.Error("negative entry did not expire")
	}
	if _, ok := c.get("c"); !ok {
		t.Error("positive entry expired")
	}
}

// TestLookupContainerd runs a pod sandbox and a container in a private
// containerd through the CRI, as the kubelet would, and names the container.
func TestLookupContainerd(t *testing.T) {
	rt := startContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	uid := newUID(t)
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "invoice-api-7d9f-abcde", Namespace: "billing", Uid: uid},
		// No Hostname: with the node's network the pod shares its UTS namespace.
		// The kubelet's labels: the pod's own plus its identity.
		Labels: map[string]string{"app": "invoice-api", "pod-template-hash": "7d9f",
			labelPodName: "invoice-api-7d9f-abcde", labelPodNamespace: "billing", labelPodUID: uid},
		LogDirectory: filepath.Join(rt.dir, "logs", uid),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: rt.cgroupParent(uid),
			// Host network: no CNI is needed.
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
	}
	sb, err := rt.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	ctr, err := rt.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sb.GetPodSandboxId(),
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: testBusybox},
			Command:  []string{"sleep", "300"},
			LogPath:  "app/0.log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	id := ctr.GetContainerId()
	if _, err := rt.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	// The kubelet names the image by its ID, not as the pod spec does; the
	// runtime then lists the ID and the client must find the name.
	img, err := rt.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: testBusybox}})
	if err != nil || img.GetImage() == nil {
		t.Fatalf("ImageStatus: %v, %v", img, err)
	}
	side, err := rt.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sb.GetPodSandboxId(),
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sidecar"},
			Image:    &runtimeapi.ImageSpec{Image: img.GetImage().GetId()},
			Command:  []string{"sleep", "300"},
			LogPath:  "sidecar/0.log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer sidecar: %v", err)
	}
	if l, err := rt.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: side.GetContainerId()}}); err != nil || len(l.GetContainers()) != 1 {
		t.Fatalf("ListContainers sidecar: %v, %v", l, err)
	} else if n := imageName(l.GetContainers()[0].GetImage()); n != "" {
		t.Logf("the runtime lists the sidecar's image by name (%s): lookup by image ID not exercised", n)
	}
	// The container really runs in the pod's cgroup, as the agent will see it.
	if b, err := os.ReadFile("/sys/fs/cgroup/pids" + podCfg.Linux.CgroupParent + "/" + id + "/cgroup.procs"); err != nil || len(b) == 0 {
		t.Errorf("container cgroup: %q, %v", b, err)
	}

	want := Info{
		ContainerID: id, ContainerName: "app",
		PodName: "invoice-api-7d9f-abcde", PodNamespace: "billing", PodUID: uid,
		Image: testBusybox, ImageRepository: "kubetrail.test/busybox", ImageTag: "1",
		Labels: map[string]string{"app": "invoice-api", "pod-template-hash": "7d9f"},
	}

	// One client finds the container on a miss, another from Refresh.
	onMiss := dial(t, rt)
	warmed := dial(t, rt)
	check(t, "miss", onMiss, id, want)
	// The Kubernetes form of the ID is accepted too.
	check(t, "miss, containerd://", onMiss, "containerd://"+id, want)
	if err := warmed.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	warmed.mu.Lock()
	_, cached := warmed.get(id)
	warmed.mu.Unlock()
	if !cached {
		t.Fatal("Refresh did not cache the container")
	}
	check(t, "refresh", warmed, id, want)
	wantSide := want
	wantSide.ContainerID, wantSide.ContainerName = side.GetContainerId(), "sidecar"
	check(t, "image by ID, refresh", warmed, side.GetContainerId(), wantSide)
	check(t, "image by ID, miss", onMiss, side.GetContainerId(), wantSide)

	// Unknown IDs are not errors.
	if info, ok, err := onMiss.Lookup(ctx, strings.Repeat("0", 64)); ok || err != nil {
		t.Errorf("unknown container: %+v, %v, %v", info, ok, err)
	}

	// After the pod is gone, both still name the container from their caches.
	if _, err := rt.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := rt.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if _, err := rt.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: side.GetContainerId()}); err != nil {
		t.Fatalf("RemoveContainer sidecar: %v", err)
	}
	if _, err := rt.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := rt.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetPodSandboxId()}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
	if err := warmed.Refresh(ctx); err != nil {
		t.Fatalf("Refresh after removal: %v", err)
	}
	check(t, "removed, miss client", onMiss, id, want)
	check(t, "removed, refresh client", warmed, id, want)
	// A client that never saw it cannot know it.
	if _, ok, err := dial(t, rt).Lookup(ctx, id); ok || err != nil {
		t.Errorf("removed container, new client: ok=%v err=%v", ok, err)
	}

	// With the runtime gone, cached answers still come at once, misses fail fast.
	rt.stop()
	check(t, "runtime down, cached", onMiss, id, want)
	start := time.Now()
	if _, _, err := onMiss.Lookup(ctx, strings.Repeat("1", 64)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("runtime down: err=%v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("runtime down: lookup took %v", took)
	}
}

func dial(t *testing.T, rt *containerd) *Client {
	c, err := Dial(context.Background(), rt.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func check(t *testing.T, what string, c *Client, id string, want Info) {
	t.Helper()
	got, ok, err := c.Lookup(context.Background(), id)
	if err != nil || !ok {
		t.Errorf("%s: Lookup: ok=%v err=%v", what, ok, err)
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) { // fmt sorts map keys
		t.Errorf("%s: Lookup =\n %+v\nwant\n %+v", what, got, want)
	}
}

// newUID is a random (version 4) UUID, as the API server gives pods.
func newUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
