package rules

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/internal/sharedtest"
	"github.com/kubetrail/kubetrail/k8saudit"
)

// Expected results of a k8sAuditCase besides a string ([]string for a list,
// int64 for a number).
type (
	kaAbsent   struct{} // the field has no value
	kaContains string   // a string value containing this
	kaHasAll   []string // a list value holding all of these
)

// k8sAuditCase extracts field[arg] from event n of a trace and compares it with
// want.
type k8sAuditCase struct {
	trace string // a file of Falco's k8s_audit traces, or a key of kaHandEvents
	n     int
	field string
	arg   string
	want  any
}

// kaTraceCases run on Falco's own test traces.
var kaTraceCases = []k8sAuditCase{
	// A pod created by a ReplicaSet with a privileged container (audit.k8s.io/v1beta1).
	{"create_nginx_pod_privileged.json", 0, "ka.auditid", "", "a362d22b-db3c-4590-9505-23782f12925f"},
	{"create_nginx_pod_privileged.json", 0, "ka.stage", "", "ResponseComplete"},
	{"create_nginx_pod_privileged.json", 0, "ka.verb", "", "create"},
	{"create_nginx_pod_privileged.json", 0, "ka.uri", "", "/api/v1/namespaces/default/pods"},
	{"create_nginx_pod_privileged.json", 0, "ka.user.name", "", "system:serviceaccount:kube-system:replicaset-controller"},
	{"create_nginx_pod_privileged.json", 0, "ka.user.groups", "", []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}},
	{"create_nginx_pod_privileged.json", 0, "ka.sourceips", "", []string{"::1"}},
	{"create_nginx_pod_privileged.json", 0, "ka.target.resource", "", "pods"},
	{"create_nginx_pod_privileged.json", 0, "ka.target.namespace", "", "default"},
	{"create_nginx_pod_privileged.json", 0, "ka.target.name", "", kaAbsent{}}, // generateName: objectRef has none
	{"create_nginx_pod_privileged.json", 0, "ka.target.subresource", "", kaAbsent{}},
	{"create_nginx_pod_privileged.json", 0, "ka.target.pod.name", "", "nginx-deployment-5cdcc99dbf-rgw6z"},
	{"create_nginx_pod_privileged.json", 0, "ka.resp.name", "", "nginx-deployment-5cdcc99dbf-rgw6z"},
	{"create_nginx_pod_privileged.json", 0, "ka.response.code", "", "201"},
	{"create_nginx_pod_privileged.json", 0, "ka.cluster.name", "", "test-cluster"},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.privileged", "", []string{"true"}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.image", "", []string{"nginx"}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.image.repository", "", []string{"nginx"}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.name", "", []string{"nginx"}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.container.image", "", "nginx"},
	{"create_nginx_pod_privileged.json", 0, "ka.req.container.image.repository", "", "nginx"},
	{"create_nginx_pod_privileged.json", 0, "ka.req.container.privileged", "", "true"},
	// Nothing sets a user or group: the effective ones are 0.
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.eff_run_as_user", "", []string{"0"}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.eff_run_as_group", "", []string{"0"}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.containers.run_as_user", "", kaAbsent{}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.run_as_user", "", kaAbsent{}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.host_network", "", kaAbsent{}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.pod.initContainers.image", "", kaAbsent{}},
	{"create_nginx_pod_privileged.json", 0, "ka.req.volume.hostpath", "/etc", kaAbsent{}}, // no volumes in the request
	{"create_nginx_pod_privileged.json", 0, "jevt.value", "/requestObject/spec/containers/0/securityContext/privileged", "true"},
	{"create_nginx_pod_privileged.json", 0, "jevt.value", "/responseStatus/code", "201"},

	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.pod.containers.privileged", "", []string{"false", "true"}},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.pod.containers.privileged", "1", []string{"true"}},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.pod.containers.image", "", []string{"nginx", "mysql:latest"}},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.pod.containers.image", "1", []string{"mysql:latest"}},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.pod.containers.image", "2", kaAbsent{}},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.pod.containers.image.repository", "", []string{"nginx", "mysql"}},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.container.image", "", "nginx"},
	{"create_nginx_pod_privileged_2nd_container.json", 0, "ka.req.container.privileged", "", "true"},
	// A container that does not say contributes nothing.
	{"create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json", 0, "ka.req.pod.containers.privileged", "", []string{"true"}},
	{"create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json", 0, "ka.req.pod.containers.privileged", "0", kaAbsent{}},
	{"create_nginx_pod_unprivileged.json", 0, "ka.req.container.privileged", "", "false"},

	{"create_nginx_pod_hostnetwork.json", 0, "ka.req.pod.host_network", "", "true"},
	{"create_nginx_pod_hostnetwork.json", 0, "ka.req.container.host_network", "", "true"},

	{"create_nginx_pod_sensitive_mount.json", 0, "ka.req.pod.volumes.hostpath", "", []string{"/etc"}},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.req.volume.hostpath", "/etc", "true"},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.req.volume.hostpath", "/et*", "true"},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.req.volume.hostpath", "/var", "false"},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.req.pod.volumes.volume_type", "", []string{"hostPath"}},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.req.pod.volumes.flexvolume_driver", "", kaAbsent{}},
	{"create_nginx_pod_sensitive_mount.json", 0, "jevt.value", "/requestObject/spec/volumes", `[{"hostPath":{"path":"/etc","type":""},"name":"etc"}]`},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.auth.decision", "", "allow"},
	{"create_nginx_pod_sensitive_mount.json", 0, "ka.auth.reason", "", kaContains("system:controller:replicaset-controller")},

	{"exec_pod.json", 0, "ka.uri.param", "command", "bash"},
	{"exec_pod.json", 0, "ka.uri.param", "container", "nginx1"},
	{"exec_pod.json", 0, "ka.uri.param", "user", kaAbsent{}},
	{"exec_pod.json", 0, "ka.target.subresource", "", "exec"},
	{"exec_pod.json", 0, "ka.target.name", "", "nginx-deployment-7998647bdf-phvq7"},
	{"exec_pod.json", 0, "ka.target.pod.name", "", "nginx-deployment-7998647bdf-phvq7"},
	{"exec_pod.json", 0, "ka.response.code", "", "101"},
	{"exec_pod.json", 0, "ka.stage", "", "ResponseStarted"},
	// The authorizer wrote an empty reason: a value, "".
	{"exec_pod.json", 0, "ka.auth.reason", "", ""},
	{"exec_pod.json", 0, "ka.impuser.name", "", kaAbsent{}},
	{"exec_pod.json", 0, "ka.req.binding.subject.has_name", "anyone", "true"},
	{"exec_pod.json", 0, "jevt.value", "/stage", "ResponseStarted"},
	{"exec_pod.json", 0, "jevt.value", "/annotations/authorization.k8s.io~1decision", "allow"},
	{"exec_pod.json", 0, "jevt.value", "annotations/authorization.k8s.io~1decision", "allow"}, // leading '/' optional
	{"exec_pod.json", 0, "jevt.value", "/sourceIPs/0", "192.168.99.1"},
	{"exec_pod.json", 0, "jevt.value", "/sourceIPs/1", kaAbsent{}},
	{"exec_pod.json", 0, "jevt.value", "/requestObject/spec/tls", kaAbsent{}},
	{"exec_pod.json", 0, "jevt.obj", "", kaContains("{\n  \"annotations\": {\n    \"authorization.k8s.io/decision\": \"allow\",")},
	{"exec_pod.json", 0, "jevt.obj", "", kaContains("\n  \"auditID\": \"ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6\",\n")},

	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules", "", kaHasAll{`{"apiGroups":[""],"resources":["pods"],"verbs":["*"]}`}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.verbs", "", []string{"*", "get"}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.verbs", "1", []string{"get"}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.verbs", "2", kaAbsent{}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.resources", "", []string{"pods"}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.apiGroups", "", []string{""}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.nonResourceURLs", "", kaHasAll{"/api", "/healthz", "/version/"}},
	{"create_cluster_role_wildcard_verbs.json", 0, "ka.req.role.rules.nonResourceURLs", "0", kaAbsent{}},
	// The plugin's event time is the stageTimestamp.
	{"create_cluster_role_wildcard_verbs.json", 0, "jevt.rawtime", "", time.Date(2018, 10, 26, 14, 24, 52, 741516000, time.UTC).UnixNano()},
	{"create_cluster_role_wildcard_verbs.json", 0, "jevt.time", "", "14:24:52.741516000"},
	{"create_cluster_role_wildcard_verbs.json", 0, "jevt.time.iso8601", "", "2018-10-26T14:24:52.741516000Z"},
	{"create_cluster_role_pod_exec.json", 0, "ka.req.role.rules.resources", "", kaHasAll{"pods/exec"}},

	{"create_configmap_sensitive_values.json", 0, "ka.req.configmap.name", "", "my-config"},
	{"create_configmap_sensitive_values.json", 0, "ka.req.configmap.obj", "", `{"access.properties":"aws_access_key_id = MY-ID\naws_secret_access_key = MY-KEY\n","ui.properties":"color.good=purple\ncolor.bad=yellow\nallow.textmode=true\n"}`},
	{"create_configmap_sensitive_values.json", 1, "ka.req.configmap.obj", "", kaContains("aws-access-key-id")},

	{"create_clusterrolebinding.json", 0, "ka.req.binding.role", "", "system:basic-user"},
	{"create_clusterrolebinding.json", 0, "ka.req.binding.subjects", "", []string{`{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"minikube"}`}},
	{"create_clusterrolebinding.json", 0, "ka.req.binding.subjects.user_names", "", []string{"minikube"}},
	{"create_clusterrolebinding.json", 0, "ka.req.binding.subjects.group_names", "", kaAbsent{}},
	{"create_clusterrolebinding.json", 0, "ka.target.namespace", "", kaAbsent{}}, // cluster-scoped

	{"create_nginx_service_nodeport.json", 0, "ka.req.service.type", "", "NodePort"},
	{"create_nginx_service_nodeport.json", 0, "ka.req.service.ports", "", []string{`{"nodePort":30080,"port":80,"protocol":"TCP","targetPort":80}`}},
	{"create_nginx_service_nodeport.json", 0, "ka.req.service.ports", "0", []string{`{"nodePort":30080,"port":80,"protocol":"TCP","targetPort":80}`}},
	{"create_nginx_service_nodeport.json", 0, "ka.req.service.ports", "1", kaAbsent{}},

	{"create_kube_system_secret.json", 0, "ka.useragent", "", "kubeadm/v1.16.2 (linux/amd64) kubernetes/c97fe50"},
	{"create_kube_system_secret.json", 0, "ka.sourceips", "0", []string{"127.0.0.1"}},
	{"create_kube_system_secret.json", 0, "ka.sourceips", "1", kaAbsent{}},
	{"create_kube_system_secret.json", 0, "ka.target.pod.name", "", kaAbsent{}},

	{"anonymous_creates_namespace_foo.json", 0, "ka.user.name", "", "system:anonymous"},
	{"anonymous_creates_namespace_foo.json", 0, "ka.target.name", "", "foo"},
}

// kaHandEvents are audit events for what no trace has: init and ephemeral
// containers, security contexts, bindings of several kinds, OpenShift and
// admission annotations, a refused request.
var kaHandEvents = map[string]string{
	"hand:pod": `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse",
	 "auditID":"11111111-2222-3333-4444-555555555555","stage":"ResponseComplete",
	 "requestURI":"/api/v1/namespaces/team-a/pods?fieldManager=kubectl-create&dryRun=All","verb":"create",
	 "user":{"username":"alice","groups":["dev","system:authenticated"]},"impersonatedUser":{"username":"bob"},
	 "sourceIPs":["10.0.0.7","10.0.0.8"],"userAgent":"kubectl/v1.30.0",
	 "objectRef":{"resource":"pods","namespace":"team-a","name":"web","apiVersion":"v1"},
	 "responseStatus":{"metadata":{},"code":201},
	 "requestObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"team-a"},"spec":{
	   "hostIPC":true,"hostPID":false,
	   "securityContext":{"runAsUser":1000,"runAsGroup":3000,"fsGroup":2000,"supplementalGroups":[4000,5000]},
	   "initContainers":[{"name":"setup","image":"registry.local:5000/tools/setup:v2","command":["sh","-c"],"args":["echo hi"],
	     "ports":[{"containerPort":9000}],
	     "securityContext":{"privileged":true,"allowPrivilegeEscalation":true,"readOnlyRootFilesystem":false,"runAsUser":0,"runAsGroup":0,
	       "procMount":"Unmasked","capabilities":{"add":["NET_ADMIN"]}}}],
	   "containers":[
	     {"name":"app","image":"ghcr.io/acme/app@sha256:abcd","command":["/app"],"args":["--port","8080"],
	      "ports":[{"containerPort":8080,"hostPort":18080},{"containerPort":9090}],
	      "securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"runAsUser":1001,"procMount":"Default",
	        "capabilities":{"add":["SYS_TIME","NET_RAW"]}}},
	     {"name":"sidecar","image":"busybox:1.36","securityContext":{"privileged":false,"runAsGroup":3001}}],
	   "ephemeralContainers":[{"name":"debugger","image":"busybox","command":["sh"],"args":["-c","sleep 1d"],
	     "securityContext":{"privileged":true,"allowPrivilegeEscalation":true,"readOnlyRootFilesystem":false,"runAsGroup":7,
	       "procMount":"Default","capabilities":{"add":["SYS_PTRACE"]}}}],
	   "volumes":[{"name":"sock","hostPath":{"path":"/var/run/docker.sock","type":"Socket"}},
	     {"name":"flex","flexVolume":{"driver":"acme/lvm"}},{"name":"cfg","configMap":{"name":"cfg"}}]}},
	 "responseObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","namespace":"team-a","uid":"0c5b0a5e-0000-4000-8000-000000000001"}},
	 "requestReceivedTimestamp":"2024-05-01T10:00:00.000001Z","stageTimestamp":"2024-05-01T10:00:00.123456Z",
	 "annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed",
	   "authentication.openshift.io/decision":"allow","authentication.openshift.io/username":"kube:admin",
	   "validation.policy.admission.k8s.io/validation_failure":"[{\"message\":\"denied\",\"policy\":\"demo\"}]",
	   "pod-security.kubernetes.io/audit-violations":"would violate PodSecurity \"restricted:latest\"",
	   "example.com~tilde/key":"escaped"}}`,

	"hand:binding": `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse",
	 "auditID":"22222222-2222-3333-4444-555555555555","stage":"ResponseComplete",
	 "requestURI":"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings","verb":"create",
	 "user":{"username":"alice"},"sourceIPs":["10.0.0.7"],
	 "objectRef":{"resource":"clusterrolebindings","name":"admins","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"},
	 "responseStatus":{"metadata":{},"code":201},
	 "requestObject":{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"admins"},
	   "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
	   "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"},
	     {"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"},
	     {"kind":"ServiceAccount","name":"ci","namespace":"build"},
	     {"kind":"ServiceAccount","name":"default","namespace":"kube-system"}]},
	 "requestReceivedTimestamp":"2024-05-01T10:00:01.000000Z","stageTimestamp":"2024-05-01T10:00:01.010000Z"}`,

	// A refused non-resource request whose query does not parse.
	"hand:refused": `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",
	 "auditID":"33333333-2222-3333-4444-555555555555","stage":"ResponseComplete",
	 "requestURI":"/version?timeout=32s&bad=%zz","verb":"get",
	 "user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["203.0.113.9"],
	 "responseStatus":{"metadata":{},"status":"Failure","reason":"Forbidden","code":403},
	 "annotations":{"authorization.k8s.io/decision":"forbid"},
	 "requestReceivedTimestamp":"2024-05-01T10:00:02.000000Z","stageTimestamp":"2024-05-01T10:00:02.000100Z"}`,

	// A patch of a pod whose container names no image.
	"hand:patch": `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request",
	 "auditID":"44444444-2222-3333-4444-555555555555","stage":"ResponseComplete",
	 "requestURI":"/api/v1/namespaces/team-a/pods/web","verb":"patch","user":{"username":"alice"},
	 "objectRef":{"resource":"pods","namespace":"team-a","name":"web","apiVersion":"v1"},
	 "responseStatus":{"metadata":{},"code":200},
	 "requestObject":{"spec":{"containers":[{"name":"app","securityContext":{"privileged":true}}]}},
	 "requestReceivedTimestamp":"2024-05-01T10:00:03.000000Z","stageTimestamp":"2024-05-01T10:00:03.000100Z"}`,
}

var kaHandCases = []k8sAuditCase{
	{"hand:pod", 0, "ka.auth.openshift.decision", "", "allow"},
	{"hand:pod", 0, "ka.auth.openshift.username", "", "kube:admin"},
	{"hand:pod", 0, "ka.validations.admission.policy.failure", "", `[{"message":"denied","policy":"demo"}]`},
	{"hand:pod", 0, "ka.security.pod.violations", "", `would violate PodSecurity "restricted:latest"`},
	{"hand:pod", 0, "ka.auth.reason", "", "RBAC: allowed"},
	{"hand:pod", 0, "ka.impuser.name", "", "bob"},
	{"hand:pod", 0, "ka.uri.param", "fieldManager", "kubectl-create"},
	{"hand:pod", 0, "ka.sourceips", "", []string{"10.0.0.7", "10.0.0.8"}},
	{"hand:pod", 0, "ka.sourceips", "1", []string{"10.0.0.8"}},
	{"hand:pod", 0, "ka.useragent", "", "kubectl/v1.30.0"},
	{"hand:pod", 0, "ka.target.pod.name", "", "web"},
	{"hand:pod", 0, "ka.resp.name", "", "web"},
	{"hand:pod", 0, "ka.cluster.name", "", "test-cluster"},
	{"hand:pod", 0, "ka.req.pod.host_ipc", "", "true"},
	{"hand:pod", 0, "ka.req.pod.host_pid", "", "false"},
	{"hand:pod", 0, "ka.req.pod.host_network", "", kaAbsent{}},
	{"hand:pod", 0, "ka.req.pod.run_as_user", "", "1000"},
	{"hand:pod", 0, "ka.req.pod.run_as_group", "", "3000"},
	{"hand:pod", 0, "ka.req.pod.fs_group", "", "2000"},
	{"hand:pod", 0, "ka.req.pod.supplemental_groups", "", []string{"4000", "5000"}},
	// Only the containers count, not the privileged init container.
	{"hand:pod", 0, "ka.req.container.privileged", "", "false"},
	{"hand:pod", 0, "ka.req.container.image", "", "ghcr.io/acme/app@sha256:abcd"},
	{"hand:pod", 0, "ka.req.container.image.repository", "", "ghcr.io/acme/app"},

	{"hand:pod", 0, "ka.req.pod.containers.name", "", []string{"app", "sidecar"}},
	{"hand:pod", 0, "ka.req.pod.containers.name", "1", []string{"sidecar"}},
	{"hand:pod", 0, "ka.req.pod.containers.image", "0", []string{"ghcr.io/acme/app@sha256:abcd"}},
	{"hand:pod", 0, "ka.req.pod.containers.image.repository", "", []string{"ghcr.io/acme/app", "busybox"}},
	{"hand:pod", 0, "ka.req.pod.containers.command", "", []string{"/app"}},
	{"hand:pod", 0, "ka.req.pod.containers.args", "", []string{"--port", "8080"}},
	{"hand:pod", 0, "ka.req.pod.containers.args", "1", kaAbsent{}},
	{"hand:pod", 0, "ka.req.pod.containers.privileged", "", []string{"false"}},
	{"hand:pod", 0, "ka.req.pod.containers.allow_privilege_escalation", "", []string{"false"}},
	{"hand:pod", 0, "ka.req.pod.containers.read_only_fs", "", []string{"true"}},
	{"hand:pod", 0, "ka.req.pod.containers.run_as_user", "", []string{"1001"}},
	// The container's own ID, else the pod's.
	{"hand:pod", 0, "ka.req.pod.containers.eff_run_as_user", "", []string{"1001", "1000"}},
	{"hand:pod", 0, "ka.req.pod.containers.eff_run_as_user", "1", []string{"1000"}},
	{"hand:pod", 0, "ka.req.pod.containers.run_as_group", "", []string{"3001"}},
	{"hand:pod", 0, "ka.req.pod.containers.eff_run_as_group", "", []string{"3000", "3001"}},
	{"hand:pod", 0, "ka.req.pod.containers.proc_mount", "", []string{"Default"}},
	{"hand:pod", 0, "ka.req.pod.containers.add_capabilities", "", []string{"SYS_TIME", "NET_RAW"}},
	{"hand:pod", 0, "ka.req.pod.containers.host_port", "", []string{"18080", "9090"}},
	{"hand:pod", 0, "ka.req.pod.containers.host_port", "1", kaAbsent{}},

	{"hand:pod", 0, "ka.req.pod.initContainers.name", "", []string{"setup"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.image", "", []string{"registry.local:5000/tools/setup:v2"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.image.repository", "", []string{"registry.local:5000/tools/setup"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.command", "", []string{"sh", "-c"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.args", "", []string{"echo hi"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.privileged", "", []string{"true"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.allow_privilege_escalation", "", []string{"true"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.read_only_fs", "", []string{"false"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.run_as_user", "", []string{"0"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.eff_run_as_user", "", []string{"0"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.run_as_group", "", []string{"0"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.eff_run_as_group", "", []string{"0"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.proc_mount", "", []string{"Unmasked"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.add_capabilities", "", []string{"NET_ADMIN"}},
	{"hand:pod", 0, "ka.req.pod.initContainers.host_port", "", []string{"9000"}},

	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.name", "", []string{"debugger"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.image", "", []string{"busybox"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.image.repository", "", []string{"busybox"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.command", "", []string{"sh"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.args", "", []string{"-c", "sleep 1d"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.privileged", "", []string{"true"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.allow_privilege_escalation", "", []string{"true"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.read_only_fs", "", []string{"false"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.run_as_user", "", kaAbsent{}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.eff_run_as_user", "", []string{"1000"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.run_as_group", "", []string{"7"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.eff_run_as_group", "", []string{"7"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.proc_mount", "", []string{"Default"}},
	{"hand:pod", 0, "ka.req.pod.ephemeralContainers.add_capabilities", "", []string{"SYS_PTRACE"}},

	{"hand:pod", 0, "ka.req.pod.volumes.hostpath", "", []string{"/var/run/docker.sock"}},
	{"hand:pod", 0, "ka.req.pod.volumes.flexvolume_driver", "", []string{"acme/lvm"}},
	{"hand:pod", 0, "ka.req.pod.volumes.volume_type", "", []string{"hostPath", "flexVolume", "configMap"}},
	{"hand:pod", 0, "ka.req.pod.volumes.volume_type", "2", []string{"configMap"}},
	{"hand:pod", 0, "ka.req.volume.hostpath", "/var/run/docker.sock", "true"},
	{"hand:pod", 0, "ka.req.volume.hostpath", "/var/run/*", "true"},
	{"hand:pod", 0, "ka.req.volume.hostpath", "/var/run", "false"}, // no '*': the whole path
	{"hand:pod", 0, "jevt.value", "/annotations/example.com~0tilde~1key", "escaped"},
	{"hand:pod", 0, "jevt.value", "/requestObject/spec/securityContext/supplementalGroups", "[4000,5000]"},
	{"hand:pod", 0, "jevt.rawtime", "", time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC).UnixNano()},

	{"hand:binding", 0, "ka.req.binding.role", "", "cluster-admin"},
	{"hand:binding", 0, "ka.req.binding.subjects", "", kaHasAll{`{"kind":"ServiceAccount","name":"ci","namespace":"build"}`}},
	{"hand:binding", 0, "ka.req.binding.subjects.user_names", "", []string{"alice"}},
	{"hand:binding", 0, "ka.req.binding.subjects.group_names", "", []string{"devs"}},
	{"hand:binding", 0, "ka.req.binding.subjects.serviceaccount_names", "", []string{"ci", "default"}},
	{"hand:binding", 0, "ka.req.binding.subjects.serviceaccount_ns_names", "", []string{"build:ci", "kube-system:default"}},
	{"hand:binding", 0, "ka.req.pod.containers.image", "", kaAbsent{}},

	{"hand:refused", 0, "ka.response.code", "", "403"},
	{"hand:refused", 0, "ka.response.reason", "", "Forbidden"},
	{"hand:refused", 0, "ka.auth.decision", "", "forbid"},
	{"hand:refused", 0, "ka.auth.reason", "", kaAbsent{}},
	{"hand:refused", 0, "ka.target.resource", "", kaAbsent{}},
	{"hand:refused", 0, "ka.target.pod.name", "", kaAbsent{}},
	{"hand:refused", 0, "ka.uri.param", "timeout", kaAbsent{}}, // the query does not parse
	{"hand:refused", 0, "ka.user.groups", "", []string{"system:unauthenticated"}},
	{"hand:refused", 0, "ka.req.binding.subjects", "", kaAbsent{}},
	{"hand:refused", 0, "ka.req.container.privileged", "", kaAbsent{}},

	// Every container must have an image for the images to have a value.
	{"hand:patch", 0, "ka.req.pod.containers.image", "", kaAbsent{}},
	{"hand:patch", 0, "ka.req.pod.containers.image.repository", "", kaAbsent{}},
	{"hand:patch", 0, "ka.req.container.image", "", kaAbsent{}},
	{"hand:patch", 0, "ka.req.pod.containers.name", "", []string{"app"}},
	{"hand:patch", 0, "ka.req.container.privileged", "", "true"},
	{"hand:patch", 0, "ka.req.pod.containers.eff_run_as_user", "", []string{"0"}},
}

func TestK8sAuditFieldsTraces(t *testing.T) {
	dir := filepath.Join(sharedtest.Dir(t), "falcosecurity-falco-k8s-audit-traces", "test", "trace_files", "k8s_audit")
	runK8sAuditCases(t, kaTraceCases, func(trace string) io.ReadCloser {
		f, err := os.Open(filepath.Join(dir, trace))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestK8sAuditFieldsHandWritten(t *testing.T) {
	runK8sAuditCases(t, kaHandCases, func(trace string) io.ReadCloser {
		doc, ok := kaHandEvents[trace]
		if !ok {
			t.Fatalf("no hand-written event %s", trace)
		}
		return io.NopCloser(strings.NewReader(doc))
	})
}

func runK8sAuditCases(t *testing.T, cases []k8sAuditCase, open func(trace string) io.ReadCloser) {
	events := map[string][]kubetrail.Event{}
	for _, tc := range cases {
		name := tc.trace + "/" + tc.field
		if tc.arg != "" {
			name += "[" + tc.arg + "]"
		}
		t.Run(name, func(t *testing.T) {
			evs, ok := events[tc.trace]
			if !ok {
				evs = readK8sAuditEvents(t, open(tc.trace))
				events[tc.trace] = evs
			}
			if tc.n >= len(evs) {
				t.Fatalf("the trace has %d events", len(evs))
			}
			def := k8sAuditField(t, tc.field)
			got, ok := def.Extract(&Input{Event: &evs[tc.n]}, tc.arg)
			checkK8sAuditValue(t, def, got, ok, tc.want)
		})
	}
}

func readK8sAuditEvents(t *testing.T, f io.ReadCloser) []kubetrail.Event {
	t.Helper()
	defer f.Close()
	r := k8saudit.NewReader(f, "test-cluster")
	var evs []kubetrail.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

func k8sAuditField(t *testing.T, name string) *FieldDef {
	t.Helper()
	for i := range k8sAuditFields {
		if k8sAuditFields[i].Name == name {
			return &k8sAuditFields[i]
		}
	}
	t.Fatalf("no field %s", name)
	return nil
}

func checkK8sAuditValue(t *testing.T, def *FieldDef, got Value, ok bool, want any) {
	t.Helper()
	if _, absent := want.(kaAbsent); absent {
		if ok {
			t.Errorf("got %+v, want no value", got)
		}
		return
	}
	if !ok {
		t.Fatalf("no value, want %q", want)
	}
	switch w := want.(type) {
	case string:
		if def.Kind != KindString || got.Str != w {
			t.Errorf("got %q (%v), want %q", got.Str, def.Kind, w)
		}
	case kaContains:
		if def.Kind != KindString || !strings.Contains(got.Str, string(w)) {
			t.Errorf("got %q, want it to contain %q", got.Str, w)
		}
	case []string:
		if def.Kind != KindList || !slices.Equal(got.List, w) {
			t.Errorf("got %q (%v), want %q", got.List, def.Kind, w)
		}
	case kaHasAll:
		for _, s := range w {
			if def.Kind != KindList || !slices.Contains(got.List, s) {
				t.Errorf("got %q, want it to hold %q", got.List, s)
			}
		}
	case int64:
		if def.Kind != KindInt || got.Int != w {
			t.Errorf("got %d (%v), want %d", got.Int, def.Kind, w)
		}
	default:
		t.Fatalf("bad want %T", want)
	}
}

// The fields are the k8saudit plugin's, with its types and arguments, and the
// json plugin's jevt fields.
func TestK8sAuditFieldsMatchPlugin(t *testing.T) {
	var plugin []struct{ Field, Type, Arg string }
	if err := json.Unmarshal(sharedtest.Read(t, "falcosecurity-plugins/k8saudit_supported_fields.json"), &plugin); err != nil {
		t.Fatal(err)
	}
	want := map[string]FieldDef{
		"jevt.value":        {Kind: KindString, Arg: ArgKey},
		"jevt.obj":          {Kind: KindString, Arg: ArgNone},
		"jevt.rawtime":      {Kind: KindInt, Arg: ArgNone},
		"jevt.time":         {Kind: KindString, Arg: ArgNone},
		"jevt.time.iso8601": {Kind: KindString, Arg: ArgNone},
	}
	kinds := map[string]Kind{"string": KindString, "string (list)": KindList, "uint64": KindInt}
	args := map[string]Arg{"None": ArgNone, "Index": ArgIndex, "Key, Required": ArgKey, "Index, Required": ArgIndexReq}
	for _, f := range plugin {
		kind, ok1 := kinds[f.Type]
		arg, ok2 := args[f.Arg]
		if !ok1 || !ok2 {
			t.Fatalf("%s: unknown type %q or argument %q", f.Field, f.Type, f.Arg)
		}
		want[f.Field] = FieldDef{Kind: kind, Arg: arg}
	}
	if len(plugin) != 100 {
		t.Errorf("the plugin lists %d fields, want 100", len(plugin))
	}
	seen := map[string]bool{}
	for _, d := range k8sAuditFields {
		if seen[d.Name] {
			t.Errorf("%s defined twice", d.Name)
		}
		seen[d.Name] = true
		w, ok := want[d.Name]
		switch {
		case !ok:
			t.Errorf("%s is not a field of the plugins", d.Name)
		case d.Kind != w.Kind || d.Arg != w.Arg:
			t.Errorf("%s: kind %v arg %v, want kind %v arg %v", d.Name, d.Kind, d.Arg, w.Kind, w.Arg)
		}
		if d.Source != SourceK8sAudit || d.Extract == nil {
			t.Errorf("%s: source %q, extract set %v", d.Name, d.Source, d.Extract != nil)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s is missing", name)
		}
	}
}

// Every field is exercised by a case.
func TestK8sAuditFieldsCovered(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range slices.Concat(kaTraceCases, kaHandCases) {
		tested[tc.field] = true
	}
	for _, d := range k8sAuditFields {
		if !tested[d.Name] {
			t.Errorf("no case tests %s", d.Name)
		}
	}
}

// An event without its JSON (as read back from storage) still has what
// kubetrail parsed; the request object's fields have no value.
func TestK8sAuditFieldsWithoutJSON(t *testing.T) {
	ev := kubetrail.Event{Category: kubetrail.CategoryK8s, Cluster: "c1", Audit: kubetrail.Audit{
		Stage: "ResponseComplete", UserName: "alice", ResponseCode: 404, URI: "/api/v1/pods?limit=5",
	}}
	cases := []struct {
		field, arg string
		want       any
	}{
		{"ka.user.name", "", "alice"},
		{"ka.response.code", "", "404"},
		{"ka.uri.param", "limit", "5"},
		{"ka.cluster.name", "", "c1"},
		{"jevt.value", "/stage", "ResponseComplete"},
		{"jevt.value", "/verb", kaAbsent{}},
		{"ka.verb", "", kaAbsent{}},
		{"ka.req.pod.containers.image", "", kaAbsent{}},
		{"jevt.obj", "", kaAbsent{}},
		{"jevt.rawtime", "", kaAbsent{}},
	}
	for _, tc := range cases {
		t.Run(tc.field+tc.arg, func(t *testing.T) {
			def := k8sAuditField(t, tc.field)
			got, ok := def.Extract(&Input{Event: &ev}, tc.arg)
			checkK8sAuditValue(t, def, got, ok, tc.want)
		})
	}
}

func TestK8sAuditImageRepository(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                                "nginx",
		"nginx:1.27":                           "nginx",
		"docker.io/falcosecurity/falco:0.38.0": "docker.io/falcosecurity/falco",
		"nginx@sha256:0123abcd":                "nginx",
		"ghcr.io/acme/app:v1@sha256:0123abcd":  "ghcr.io/acme/app",
		"registry.local:5000/app":              "registry.local:5000/app",
		"registry.local:5000/app:1":            "registry.local:5000/app",
	} {
		if got := imageRepository(image); got != want {
			t.Errorf("imageRepository(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestK8sAuditJSONPointer(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"a":{"b/c":[10,{"d~e":"x"}],"":"empty"},"n":null}`), &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pointer string
		want    string // "" for nothing
	}{
		{"/a/b~1c/0", "10"},
		{"/a/b~1c/1/d~0e", "x"},
		{"a/b~1c/1", `{"d~e":"x"}`},
		{"/a/", "empty"},
		{"/n", "null"},
		{"/a/b~1c/2", ""},
		{"/a/b~1c/-1", ""},
		{"/a/b~1c/x", ""},
		{"/a/b/c", ""},
		{"/n/x", ""},
		{"", ""},
	} {
		v, ok := lookupJSONPointer(doc, tc.pointer)
		if got := jsonText(v); ok != (tc.want != "") || ok && got != tc.want {
			t.Errorf("%q: got %q (%v), want %q", tc.pointer, got, ok, tc.want)
		}
	}
}
