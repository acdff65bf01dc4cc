package cgroup

import (
	"strings"
	"testing"
)

// Realistic values: container ids as containerd prints them, a pod UID as the API
// server makes them, and the same UID as the systemd driver writes it.
const (
	id     = "dc452320e0bfd27b42c2fb934b0fd64557982b6f5b57b099b434667845748b75"
	id2    = "a91c74f0819d5b6918e6bc3894fffdfee5e2689cfc6856c23b0fa36edf38c27b"
	nodeID = "da12d673147204f985f96b5bb9702da4b56f9e58d116dafcaefdcc1473e35da9"
	uid    = "37253bbe-b9ab-45a7-9319-6acf3a022b54"
	uidU   = "37253bbe_b9ab_45a7_9319_6acf3a022b54"
	static = "72b0984a6de8675bd6cf83c726cf02ca" // a static pod's UID: the manifest's hash
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		want       Container // zero: not a container
	}{
		// kubelet, cgroupfs driver
		{"cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + id,
			Container{ID: id, PodUID: uid, QoS: QoSBestEffort}},
		{"cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + id,
			Container{ID: id, PodUID: uid, QoS: QoSBurstable}},
		{"cgroupfs guaranteed has no qos level", "/kubepods/pod" + uid + "/" + id,
			Container{ID: id, PodUID: uid, QoS: QoSGuaranteed}},
		{"cgroupfs static pod", "/kubepods/burstable/pod" + static + "/" + id,
			Container{ID: id, PodUID: static, QoS: QoSBurstable}},
		{"cgroupfs cri-o", "/kubepods/burstable/pod" + uid + "/crio-" + id,
			Container{ID: id, PodUID: uid, Runtime: RuntimeCRIO, QoS: QoSBurstable}},
		{"cgroupfs --cgroup-root", "/kubelet/kubepods/besteffort/pod" + uid + "/" + id,
			Container{ID: id, PodUID: uid, QoS: QoSBestEffort}},
		{"container's own sub-cgroup", "/kubepods/besteffort/pod" + uid + "/" + id + "/init.scope",
			Container{ID: id, PodUID: uid, QoS: QoSBestEffort}},
		{"pod uid not a uid", "/kubepods/besteffort/podfoo/" + id, Container{ID: id}},

		// kubelet, systemd driver
		{"systemd containerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSBurstable}},
		{"systemd besteffort", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSBestEffort}},
		{"systemd guaranteed", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSGuaranteed}},
		{"systemd cri-o", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: RuntimeCRIO, QoS: QoSBurstable}},
		{"cri-o crun sub-cgroup", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + id + ".scope/container",
			Container{ID: id, PodUID: uid, Runtime: RuntimeCRIO, QoS: QoSBurstable}},
		{"systemd cri-dockerd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/docker-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: RuntimeDocker, QoS: QoSBestEffort}},
		{"containerd.service literal systemd path", "/system.slice/containerd.service/kubepods-burstable-pod" + uidU + ".slice:cri-containerd:" + id,
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSBurstable}},
		{"containerd.service guaranteed", "/system.slice/containerd.service/kubepods-pod" + uidU + ".slice:cri-containerd:" + id,
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSGuaranteed}},

		// Docker, Podman, nerdctl outside Kubernetes
		{"docker systemd", "/system.slice/docker-" + id + ".scope", Container{ID: id, Runtime: RuntimeDocker}},
		{"docker cgroupfs", "/docker/" + id, Container{ID: id, Runtime: RuntimeDocker}},
		{"podman cgroupfs", "/libpod_parent/libpod-" + id, Container{ID: id, Runtime: RuntimePodman}},
		{"podman systemd", "/machine.slice/libpod-" + id + ".scope", Container{ID: id, Runtime: RuntimePodman}},
		{"podman pod", "/machine.slice/machine-libpod_pod_" + nodeID + ".slice/libpod-" + id + ".scope", Container{ID: id, Runtime: RuntimePodman}},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope/container", Container{ID: id, Runtime: RuntimePodman}},
		{"nerdctl", "/system.slice/nerdctl-" + id + ".scope", Container{ID: id, Runtime: RuntimeContainerd}},

		// Nodes that are containers: the innermost container wins.
		{"kind cgroupfs", "/docker/" + nodeID + "/kubepods/besteffort/pod" + uid + "/" + id,
			Container{ID: id, PodUID: uid, QoS: QoSBestEffort}},
		{"kind systemd", "/system.slice/docker-" + nodeID + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSBestEffort}},
		{"kind node's kubelet is in the node container", "/docker/" + nodeID + "/system.slice/kubelet.service",
			Container{ID: nodeID, Runtime: RuntimeDocker}},
		{"docker in a pod's container: not the pod's container", "/kubepods/besteffort/pod" + uid + "/" + id + "/docker/" + id2,
			Container{ID: id2, Runtime: RuntimeDocker}},

		// Not containers.
		{"root", "/", Container{}},
		{"empty", "", Container{}},
		{"user session", "/user.slice/user-1000.slice/session-3.scope", Container{}},
		{"kubelet", "/system.slice/kubelet.service", Container{}},
		{"containerd", "/system.slice/containerd.service", Container{}},
		{"pod level", "/kubepods/besteffort/pod" + uid, Container{}},
		{"pod slice", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice", Container{}},
		{"cri-o conmon", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-conmon-" + id + ".scope", Container{}},
		{"cri-o conmon cgroupfs", "/kubepods/burstable/pod" + uid + "/crio-conmon-" + id, Container{}},
		{"podman conmon", "/machine.slice/libpod-conmon-" + id + ".scope", Container{}},
		{"podman pod slice", "/machine.slice/libpod-pod-" + id + ".slice", Container{}},
		{"mount unit", "/system.slice/cri-containerd-" + id + ".mount", Container{}},
		{"63 hex", "/docker/" + id[:63], Container{}},
		{"65 hex", "/docker/" + id + "0", Container{}},
		{"upper case", "/docker/" + strings.ToUpper(id), Container{}},
		{"not hex", "/docker/" + id[:63] + "g", Container{}},
		{"unknown colon prefix", "/system.slice/containerd.service/kubepods-pod" + uidU + ".slice:foo:" + id, Container{}},
		{"colon form, bad id", "/system.slice/containerd.service/kubepods-pod" + uidU + ".slice:cri-containerd:" + id[:40], Container{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParsePath(tc.path)
			if wantOK := tc.want != (Container{}); ok != wantOK || got != tc.want {
				t.Errorf("ParsePath(%q)\n = %+v, %v\nwant %+v, %v", tc.path, got, ok, tc.want, wantOK)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	v1 := func(path string) string { // this machine's v1 hierarchies, all at one path
		var b strings.Builder
		for _, h := range []string{"9:name=systemd", "8:pids", "7:blkio", "6:freezer", "5:devices", "4:memory", "3:cpuset", "2:cpuacct", "1:cpu"} {
			b.WriteString(h + ":" + path + "\n")
		}
		return b.String()
	}
	kube := "/kubepods/besteffort/pod" + uid + "/" + id
	want := Container{ID: id, PodUID: uid, QoS: QoSBestEffort}
	systemd := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id2 + ".scope"
	for _, tc := range []struct {
		name, content string
		want          Container
	}{
		{"v2", "0::" + systemd + "\n", Container{ID: id2, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSBurstable}},
		{"v1", v1(kube), want},
		{"hybrid, as on this machine", v1(kube) + "0::" + kube + "\n", want},
		{"hybrid, v2 line wins", v1("/docker/"+id2) + "0::" + kube + "\n", want},
		{"hybrid, v2 line at the root", v1(kube) + "0::/\n", want},
		{"v1 lines differ", "4:memory:/process_api/0148d928118cfe33d776514c582ef543\n3:cpuset:" + kube + "\n0::/\n", want},
		{"colons in the path", "0::/system.slice/containerd.service/kubepods-besteffort-pod" + uidU + ".slice:cri-containerd:" + id + "\n",
			Container{ID: id, PodUID: uid, Runtime: RuntimeContainerd, QoS: QoSBestEffort}},
		{"no trailing newline", "0::" + kube, want},
		{"host, as this test runs", v1("/") + "0::/\n", Container{}},
		{"host v2", "0::/user.slice/user-0.slice/session-1.scope\n", Container{}},
		{"empty", "", Container{}},
		{"garbage", "not a cgroup file\n", Container{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseProcCgroup(tc.content)
			if wantOK := tc.want != (Container{}); ok != wantOK || got != tc.want {
				t.Errorf("ParseProcCgroup(%q)\n = %+v, %v\nwant %+v, %v", tc.content, got, ok, tc.want, wantOK)
			}
		})
	}
}

func TestV2Root(t *testing.T) {
	const (
		v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
		v2 = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	)
	for _, tc := range []struct{ name, mountinfo, want string }{
		{"pure v2", "25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"hybrid", "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" + v1 + v2, "/sys/fs/cgroup/unified"},
		{"usual place wins", "50 1 0:38 / /run/my\\040cgroup rw - cgroup2 cgroup2 rw\n" + v2, "/sys/fs/cgroup/unified"},
		{"elsewhere", "50 1 0:38 / /run/my\\040cgroup rw - cgroup2 cgroup2 rw\n", "/run/my cgroup"},
		{"part of the tree only", "50 1 0:38 /kubepods /run/x rw - cgroup2 cgroup2 rw\n", ""},
		{"v1 only", v1, ""},
	} {
		got, err := v2Root(strings.NewReader(tc.mountinfo))
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%s: v2Root = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
