// Package cgroup tells which container, if any, a cgroup or a process is in.
//
// A node agent sees processes by pid and by cgroup id (bpf_get_current_cgroup_id).
// The container runtime names the container's cgroup after the container id, and
// the kubelet names the cgroup above it after the pod UID, so the cgroup path is
// enough to attribute an event to kubetrail.Event's ContainerID and PodUID.
// ParsePath reads such a path, ParseProcCgroup reads /proc/<pid>/cgroup, and
// Resolver turns a cgroup id into a path by walking the cgroup v2 tree.
package cgroup

import "strings"

// Container is what a cgroup path tells about the container a process runs in.
type Container struct {
	ID      string // the 64 lowercase hex container id, as in the pod's containerStatuses without "containerd://"
	PodUID  string // with dashes; "" when the container is not a pod's (docker run, podman) or the path does not say
	Runtime string // RuntimeContainerd, RuntimeCRIO, RuntimeDocker, RuntimePodman or "" when the path does not say
	QoS     string // QoSGuaranteed, QoSBurstable, QoSBestEffort or "" outside Kubernetes
}

// Runtimes, as far as the cgroup name tells them. The kubelet's cgroupfs layout
// names a container cgroup by its bare id whatever the runtime, so there the
// runtime is "".
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// Pod QoS classes, which the kubelet makes a level of the cgroup tree.
const (
	QoSGuaranteed = "guaranteed"
	QoSBurstable  = "burstable"
	QoSBestEffort = "besteffort"
)

// runtimes maps the prefix a runtime puts before the container id to the runtime.
// The same word appears in runc's systemd form "slice:prefix:id".
var runtimes = []struct{ prefix, runtime string }{
	{"cri-containerd", RuntimeContainerd},
	{"crio", RuntimeCRIO},
	{"docker", RuntimeDocker},
	{"libpod", RuntimePodman},
	{"nerdctl", RuntimeContainerd},
}

// ParsePath reports the container a cgroup path (as in /proc/<pid>/cgroup, or a
// directory below a cgroup mount with the mount point cut off) belongs to.
//
// The innermost container wins: a container's own sub-cgroups (systemd or crun
// inside it) belong to it, and on a kind or k3d node, which is itself a container,
// a pod's container is the one that matters.
//
// The conmon cgroups of CRI-O and Podman (crio-conmon-<id>.scope,
// libpod-conmon-<id>.scope) are not containers: conmon is the runtime's monitor on
// the host side, not a process of the container, so attributing its activity to
// the container would put the runtime's work in the workload's trail. On a plain
// host they are therefore host processes (false).
func ParsePath(path string) (Container, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		id, runtime, ok := containerSegment(segs[i])
		if !ok {
			continue
		}
		c := Container{ID: id, Runtime: runtime}
		if runtime == "" && i > 0 && segs[i-1] == "docker" {
			c.Runtime = RuntimeDocker // docker's cgroupfs driver: /docker/<id>
		}
		c.PodUID, c.QoS = podOf(segs[:i+1])
		return c, true
	}
	return Container{}, false
}

// containerSegment reports whether one path segment names a container cgroup.
func containerSegment(seg string) (id, runtime string, ok bool) {
	// runc's systemd cgroupsPath "slice:prefix:id" taken literally as a directory
	// name, as under /system.slice/containerd.service when the path was created
	// without systemd's help.
	if parts := strings.Split(seg, ":"); len(parts) == 3 {
		for _, r := range runtimes {
			if parts[1] == r.prefix && isID(parts[2]) {
				return parts[2], r.runtime, true
			}
		}
		return "", "", false
	}
	// systemd scopes (docker-<id>.scope) and cgroupfs (libpod-<id>, crio-<id>).
	name := strings.TrimSuffix(seg, ".scope")
	if isID(name) {
		return name, "", true // cgroupfs: /kubepods/.../<id>, /docker/<id>
	}
	for _, r := range runtimes {
		// "crio-conmon-<id>" leaves "conmon-<id>", which is not an id: see ParsePath.
		if rest, ok := strings.CutPrefix(name, r.prefix+"-"); ok && isID(rest) {
			return rest, r.runtime, true
		}
	}
	return "", "", false
}

// podOf finds the pod of the container whose segment ends segs. Only the
// container's own segment (runc's "slice:prefix:id" form) and its parent are
// looked at: a container nested deeper (docker in a pod's container) is not
// that pod's container, so it gets no pod UID rather than a wrong one.
func podOf(segs []string) (uid, qos string) {
	last := segs[len(segs)-1]
	if slice, _, ok := strings.Cut(last, ":"); ok {
		return podSlice(slice)
	}
	if len(segs) < 2 {
		return "", ""
	}
	parent := segs[len(segs)-2]
	if strings.HasSuffix(parent, ".slice") {
		return podSlice(parent)
	}
	// cgroupfs: kubepods/<qos>/pod<uid>, or kubepods/pod<uid> for guaranteed pods.
	uid, ok := strings.CutPrefix(parent, "pod")
	if !ok || !isUID(uid) || len(segs) < 3 {
		return "", ""
	}
	switch above := segs[len(segs)-3]; above {
	case QoSBurstable, QoSBestEffort:
		return uid, above
	case "kubepods":
		return uid, QoSGuaranteed
	}
	return "", ""
}

// podSlice reads the systemd driver's pod slice: kubepods-<qos>-pod<uid>.slice,
// or kubepods-pod<uid>.slice for guaranteed pods, possibly behind a prefix from
// the kubelet's --cgroup-root (kind: kubelet-kubepods-...). systemd does not allow
// dashes inside a unit name's parts, so the kubelet writes the UID's dashes as
// underscores.
func podSlice(name string) (uid, qos string) {
	name, ok := strings.CutSuffix(name, ".slice")
	i := strings.LastIndex(name, "kubepods-")
	if !ok || i < 0 {
		return "", ""
	}
	rest := name[i+len("kubepods-"):]
	qos = QoSGuaranteed
	if q, r, ok := strings.Cut(rest, "-"); ok && (q == QoSBurstable || q == QoSBestEffort) {
		qos, rest = q, r
	}
	uid, ok = strings.CutPrefix(rest, "pod")
	uid = strings.ReplaceAll(uid, "_", "-")
	if !ok || !isUID(uid) {
		return "", ""
	}
	return uid, qos
}

// isID reports whether s is a container id: exactly 64 lowercase hex digits.
// Anything looser would take other cgroups (systemd units, podman pod slices)
// for containers.
func isID(s string) bool {
	return len(s) == 64 && isHex(s)
}

// isUID reports whether s is a pod UID: a UUID (8-4-4-4-12 lowercase hex) for
// API pods, or 32 hex digits for static pods, whose UID is a hash of the manifest.
func isUID(s string) bool {
	if len(s) == 32 {
		return isHex(s)
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return isHex(s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseProcCgroup reports the container of a process from the content of its
// /proc/<pid>/cgroup: "0::/path" on cgroup v2, "N:controllers:/path" per v1
// hierarchy, both in hybrid mode. The v2 line wins when it names a container:
// it is the hierarchy bpf_get_current_cgroup_id reports. Otherwise the first v1
// line that names one is used, for hybrid hosts whose runtime leaves the v2
// hierarchy alone.
func ParseProcCgroup(content string) (Container, bool) {
	var v1 Container
	var v1ok bool
	for _, line := range strings.Split(content, "\n") {
		// The path may itself hold colons (runc's "slice:prefix:id"), so only the
		// first two separate fields.
		hierarchy, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		controllers, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		c, ok := ParsePath(path)
		switch {
		case !ok:
		case hierarchy == "0" && controllers == "":
			return c, true
		case !v1ok:
			v1, v1ok = c, true
		}
	}
	return v1, v1ok
}
