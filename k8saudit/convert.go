package k8saudit

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/kubetrail/kubetrail"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Annotations the API server's authorizer adds to every audited request.
const (
	annotationDecision = "authorization.k8s.io/decision"
	annotationReason   = "authorization.k8s.io/reason"
)

// Convert maps one audit event to a kubetrail event of category k8s. It refuses an
// event without auditID (the event's identity: all stages of one request share
// it) or without requestReceivedTimestamp (its time). Workload kind and name are
// left empty: resolving a pod's owner needs the cluster's inventory.
func Convert(ev *auditv1.Event, cluster string) (kubetrail.Event, error) {
	if ev.AuditID == "" {
		return kubetrail.Event{}, kubetrail.Errorf(kubetrail.EINVALID, "missing auditID")
	}
	if ev.RequestReceivedTimestamp.IsZero() {
		return kubetrail.Event{}, kubetrail.Errorf(kubetrail.EINVALID, "missing requestReceivedTimestamp")
	}
	out := kubetrail.Event{
		Time:     ev.RequestReceivedTimestamp.UTC(),
		Category: kubetrail.CategoryK8s,
		Type:     ev.Verb,
		Cluster:  cluster,
		Audit: kubetrail.Audit{
			AuditID:      string(ev.AuditID),
			Stage:        string(ev.Stage),
			UserName:     ev.User.Username,
			UserGroups:   slices.Clone(ev.User.Groups),
			Verb:         ev.Verb,
			URI:          ev.RequestURI,
			SourceIPs:    slices.Clone(ev.SourceIPs),
			UserAgent:    ev.UserAgent,
			AuthDecision: ev.Annotations[annotationDecision],
			AuthReason:   ev.Annotations[annotationReason],
		},
	}
	if !ev.StageTimestamp.IsZero() {
		out.Audit.StageTime = ev.StageTimestamp.UTC()
	}
	if ev.ImpersonatedUser != nil {
		out.Audit.ImpUserName = ev.ImpersonatedUser.Username
	}
	if ev.ResponseStatus != nil {
		out.Audit.ResponseCode = int64(ev.ResponseStatus.Code)
		out.Audit.ResponseReason = string(ev.ResponseStatus.Reason)
	}

	ref := ev.ObjectRef
	if ref == nil { // non-resource requests such as GET /version
		return out, nil
	}
	out.Audit.Resource = ref.Resource
	out.Audit.Subresource = ref.Subresource
	out.Audit.APIGroup = ref.APIGroup
	out.Audit.TargetNamespace = ref.Namespace
	out.Audit.TargetName = ref.Name
	out.Namespace = ref.Namespace

	// Only the core group's pods: other groups' "pods" (metrics.k8s.io) have no
	// exec or attach and are not where the pod fields come from.
	if ref.Resource != "pods" || ref.APIGroup != "" {
		return out, nil
	}
	if ref.Subresource == "exec" || ref.Subresource == "attach" {
		out.Audit.ExecCommand, out.Audit.ExecContainer = execParams(ev.RequestURI)
	}
	out.PodName = ref.Name
	out.ContainerName = out.Audit.ExecContainer
	out.PodUID = string(ref.UID)
	if ev.ResponseObject != nil && (out.PodUID == "" || out.PodName == "") {
		// A Pod create (or any request on a pod logged at RequestResponse level)
		// answers with the Pod itself, which carries the UID the API server gave it
		// and, for a pod created with generateName (every pod a ReplicaSet makes),
		// the only record of its name.
		name, uid := responsePod(ev.ResponseObject.Raw)
		if out.PodName == "" {
			out.PodName = name
		}
		if out.PodUID == "" && name == out.PodName {
			out.PodUID = uid
		}
	}
	return out, nil
}

// execParams reads the command and container an exec or attach request asked for
// from its URI: kubectl sends the command as one command= parameter per argument.
// The API server reads the query with net/url too, which skips malformed pairs;
// skipping them here likewise gives the command it actually ran.
func execParams(uri string) (command []string, container string) {
	_, query, _ := strings.Cut(uri, "?")
	q, _ := url.ParseQuery(query)
	return q["command"], q.Get("container")
}

// responsePod returns the name and UID of a response object that is a Pod.
func responsePod(raw []byte) (name, uid string) {
	var obj struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"metadata"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Kind != "Pod" {
		return "", "" // a Status (a refusal) or a PodList names no single pod
	}
	return obj.Metadata.Name, obj.Metadata.UID
}
