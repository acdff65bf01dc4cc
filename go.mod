module github.com/kubetrail/kubetrail

go 1.26
