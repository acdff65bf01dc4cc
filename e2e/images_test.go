//go:build e2e

package e2e

// The test's images. There is no registry: both are written as one OCI
// image-layout archive (internal/testnode) and imported into containerd, and
// pods use them with imagePullPolicy Never. The names are qualified so that
// neither the kubelet nor containerd rewrites them (docker.io/library/...).
const (
	busyboxImage = "e2e.kubetrail.test/busybox:1"
	pauseImage   = "e2e.kubetrail.test/pause:1"
)
