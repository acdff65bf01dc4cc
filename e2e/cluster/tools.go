//go:build tools

// Package cluster only records, for `go mod tidy`, the Kubernetes commands the
// end-to-end test builds; nothing imports it.
package cluster

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
