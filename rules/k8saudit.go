package rules

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// k8sAuditFields are the fields Falco's k8s_audit rules read: the ka.* fields of
// the k8saudit plugin and the jevt.* fields of the json plugin it is loaded with.
// They are read from the audit event's JSON (Audit.Raw), or from what kubetrail
// already parsed out of it where that is the same value, with the plugins'
// semantics:
//
//   - Every value is a string, as in Falco: a JSON string is itself, any other
//     JSON value is its compact JSON text ("true", "201", `{"kind":"User",...}`).
//     That is why rules write ka.response.code startswith 2 and
//     ka.req.pod.host_network=true.
//   - A member missing from the JSON leaves the field without a value (ok false),
//     so that "exists" is false and every comparison fails; a member present with
//     an empty string has the value "". Only ka.req.container.privileged and
//     ka.req.volume.hostpath[...] fall back to "false" instead.
//   - A list with no element has no value either: Falco sees no value when a
//     plugin sets none.
//   - An index argument on a list field (ka.req.pod.containers.image[1]) picks one
//     item of the array the field walks (the second container, the second rule),
//     and the field is then the values of that item only, still a list; an index
//     past the end leaves the field without a value.
var k8sAuditFields = slices.Concat(
	kaEventFields(),
	kaRequestFields(),
	kaContainerFields("ka.req.pod.containers", "containers", true),
	kaContainerFields("ka.req.pod.initContainers", "initContainers", true),
	kaContainerFields("ka.req.pod.ephemeralContainers", "ephemeralContainers", false),
	jevtFields(),
)

// kaEventFields are the fields about the request itself: who, what, on which
// object, and how it ended.
func kaEventFields() []FieldDef {
	return []FieldDef{
		kaParsed("ka.auditid", func(a *kubetrail.Audit) string { return a.AuditID }, "auditID"),
		kaParsed("ka.stage", func(a *kubetrail.Audit) string { return a.Stage }, "stage"),
		kaParsed("ka.auth.decision", func(a *kubetrail.Audit) string { return a.AuthDecision }, "annotations", "authorization.k8s.io/decision"),
		kaParsed("ka.auth.reason", func(a *kubetrail.Audit) string { return a.AuthReason }, "annotations", "authorization.k8s.io/reason"),
		kaPath("ka.auth.openshift.decision", "annotations", "authentication.openshift.io/decision"),
		kaPath("ka.auth.openshift.username", "annotations", "authentication.openshift.io/username"),
		kaPath("ka.validations.admission.policy.failure", "annotations", "validation.policy.admission.k8s.io/validation_failure"),
		kaPath("ka.security.pod.violations", "annotations", "pod-security.kubernetes.io/audit-violations"),
		kaParsed("ka.user.name", func(a *kubetrail.Audit) string { return a.UserName }, "user", "username"),
		kaField("ka.user.groups", KindList, ArgNone, func(in *Input, _ string) (Value, bool) {
			return listValue(in.Event.Audit.UserGroups)
		}),
		kaParsed("ka.impuser.name", func(a *kubetrail.Audit) string { return a.ImpUserName }, "impersonatedUser", "username"),
		kaParsed("ka.verb", func(a *kubetrail.Audit) string { return a.Verb }, "verb"),
		kaParsed("ka.uri", func(a *kubetrail.Audit) string { return a.URI }, "requestURI"),
		kaField("ka.uri.param", KindString, ArgKey, uriParam),
		kaParsed("ka.target.name", func(a *kubetrail.Audit) string { return a.TargetName }, "objectRef", "name"),
		kaParsed("ka.target.namespace", func(a *kubetrail.Audit) string { return a.TargetNamespace }, "objectRef", "namespace"),
		kaParsed("ka.target.resource", func(a *kubetrail.Audit) string { return a.Resource }, "objectRef", "resource"),
		kaParsed("ka.target.subresource", func(a *kubetrail.Audit) string { return a.Subresource }, "objectRef", "subresource"),
		// The pod a request is about: the target of a request on a pod or one of
		// its subresources, named by the response for a pod created with
		// generateName. k8saudit.Convert already worked it out.
		kaField("ka.target.pod.name", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			return presentString(in.Event.PodName)
		}),
		kaField("ka.resp.name", KindString, ArgNone, pathText("responseObject", "metadata", "name")),
		kaField("ka.response.code", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			if c := in.Event.Audit.ResponseCode; c != 0 {
				return Value{Str: strconv.FormatInt(c, 10)}, true
			}
			return pathValue(in, "responseStatus", "code")
		}),
		kaParsed("ka.response.reason", func(a *kubetrail.Audit) string { return a.ResponseReason }, "responseStatus", "reason"),
		kaParsed("ka.useragent", func(a *kubetrail.Audit) string { return a.UserAgent }, "userAgent"),
		// The client's addresses, as documented. (The plugin's extract.go looks
		// sourceIPs up under requestObject.rules, where no event has it, so
		// Falco never has a value for it.)
		kaField("ka.sourceips", KindList, ArgIndex, func(in *Input, arg string) (Value, bool) {
			idx, ok := auditIndex(arg)
			if !ok {
				return Value{}, false
			}
			ips := in.Event.Audit.SourceIPs
			if idx >= 0 {
				if idx >= len(ips) {
					return Value{}, false
				}
				ips = ips[idx : idx+1]
			}
			return listValue(ips)
		}),
		// The name the event was ingested under: audit events do not carry it.
		kaField("ka.cluster.name", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			return presentString(in.Event.Cluster)
		}),
	}
}

// kaRequestFields are the fields about the request object (ka.req.*) other than
// the per-container ones.
func kaRequestFields() []FieldDef {
	spec := func(keys ...string) []string { return append([]string{"requestObject", "spec"}, keys...) }
	return []FieldDef{
		kaListPath("ka.req.binding.subjects", "requestObject", "subjects"),
		kaSubjectNames("ka.req.binding.subjects.user_names", "User", false),
		kaSubjectNames("ka.req.binding.subjects.serviceaccount_names", "ServiceAccount", false),
		kaSubjectNames("ka.req.binding.subjects.serviceaccount_ns_names", "ServiceAccount", true),
		kaSubjectNames("ka.req.binding.subjects.group_names", "Group", false),
		kaPath("ka.req.binding.role", "requestObject", "roleRef", "name"),
		// Documented to return "N/A"; the plugin answers "true" whatever the key,
		// as Falco's built-in k8s audit support did, and rules may depend on it.
		kaField("ka.req.binding.subject.has_name", KindString, ArgKey, func(*Input, string) (Value, bool) {
			return Value{Str: "true"}, true
		}),
		kaParsed("ka.req.configmap.name", func(a *kubetrail.Audit) string { return a.TargetName }, "objectRef", "name"),
		// The configmap's data as JSON text: rules look into it with contains.
		kaPath("ka.req.configmap.obj", "requestObject", "data"),
		// The deprecated single-container fields read the first container.
		kaField("ka.req.container.image", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			return firstImage(in, func(image string) string { return image })
		}),
		kaField("ka.req.container.image.repository", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			return firstImage(in, imageRepository)
		}),
		kaPath("ka.req.pod.host_ipc", spec("hostIPC")...),
		kaPath("ka.req.pod.host_network", spec("hostNetwork")...),
		kaPath("ka.req.container.host_network", spec("hostNetwork")...),
		kaPath("ka.req.pod.host_pid", spec("hostPID")...),
		// "true" when any container sets privileged: true, "false" otherwise,
		// including when none says; no value only without a containers array.
		kaField("ka.req.container.privileged", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			containers, ok := auditItems(in, -1, spec("containers")...)
			if !ok {
				return Value{}, false
			}
			for _, c := range containers {
				if v, _ := lookupKeys(c, "securityContext", "privileged"); v == true {
					return Value{Str: "true"}, true
				}
			}
			return Value{Str: "false"}, true
		}),
		kaPath("ka.req.pod.run_as_user", spec("securityContext", "runAsUser")...),
		kaPath("ka.req.pod.run_as_group", spec("securityContext", "runAsGroup")...),
		kaPath("ka.req.pod.fs_group", spec("securityContext", "fsGroup")...),
		kaListPath("ka.req.pod.supplemental_groups", spec("securityContext", "supplementalGroups")...),
		kaListPath("ka.req.role.rules", "requestObject", "rules"),
		kaItems("ka.req.role.rules.apiGroups", []string{"requestObject", "rules"}, memberElements("apiGroups")),
		kaItems("ka.req.role.rules.nonResourceURLs", []string{"requestObject", "rules"}, memberElements("nonResourceURLs")),
		kaItems("ka.req.role.rules.verbs", []string{"requestObject", "rules"}, memberElements("verbs")),
		kaItems("ka.req.role.rules.resources", []string{"requestObject", "rules"}, memberElements("resources")),
		kaPath("ka.req.service.type", spec("type")...),
		// Each port as JSON text ({"nodePort":30080,"port":80,...}), an index
		// picking one, as documented and as the plugin's early extract.go did.
		// (Its later one gives the whole array as one JSON text and ignores an
		// index.)
		kaItems("ka.req.service.ports", spec("ports"), func(_ *Input, port any) ([]string, bool) {
			return []string{jsonText(port)}, true
		}),
		kaItems("ka.req.pod.volumes.hostpath", spec("volumes"), member("hostPath", "path")),
		kaField("ka.req.volume.hostpath", KindString, ArgKey, volumeHostPath),
		kaItems("ka.req.pod.volumes.flexvolume_driver", spec("volumes"), member("flexVolume", "driver")),
		// A volume's type is the member that is not its name (hostPath,
		// configMap, ...). The plugin lists such members in the request's order;
		// the decoded JSON no longer has it, so a volume with several (which the
		// API refuses) lists them sorted.
		kaItems("ka.req.pod.volumes.volume_type", spec("volumes"), func(_ *Input, volume any) ([]string, bool) {
			obj, _ := volume.(map[string]any)
			var types []string
			for k := range obj {
				if k != "name" {
					types = append(types, k)
				}
			}
			sort.Strings(types)
			return types, true
		}),
	}
}

// kaContainerFields are the per-container fields of one of the pod's container
// lists (containers, initContainers, ephemeralContainers), named prefix.*. The
// fields read requestObject.spec.<list> with the plugin's rules: a container that
// does not set a value contributes nothing, except to image (every container
// must have one, or the field has no value) and to eff_run_as_* (it gets the
// pod's value, or 0).
func kaContainerFields(prefix, list string, hostPort bool) []FieldDef {
	keys := []string{"requestObject", "spec", list}
	field := func(suffix string, values func(in *Input, container any) ([]string, bool)) FieldDef {
		return kaItems(prefix+"."+suffix, keys, values)
	}
	fields := []FieldDef{
		field("name", member("name")),
		field("image", func(_ *Input, c any) ([]string, bool) {
			image, ok := lookupKeys(c, "image")
			return []string{jsonText(image)}, ok
		}),
		field("image.repository", func(_ *Input, c any) ([]string, bool) {
			image, ok := lookupKeys(c, "image")
			return []string{imageRepository(jsonText(image))}, ok
		}),
		field("command", memberElements("command")),
		field("args", memberElements("args")),
		field("privileged", member("securityContext", "privileged")),
		field("allow_privilege_escalation", member("securityContext", "allowPrivilegeEscalation")),
		field("read_only_fs", member("securityContext", "readOnlyRootFilesystem")),
		field("run_as_user", member("securityContext", "runAsUser")),
		field("eff_run_as_user", effectiveID("runAsUser")),
		field("run_as_group", member("securityContext", "runAsGroup")),
		field("eff_run_as_group", effectiveID("runAsGroup")),
		field("proc_mount", member("securityContext", "procMount")),
		// The capability names added, one value each, as documented. (The
		// plugin's extract.go gives each container's whole add list as one JSON
		// text, ["NET_ADMIN","SYS_TIME"], which no "intersects (NET_ADMIN)"
		// matches.)
		field("add_capabilities", memberElements("securityContext", "capabilities", "add")),
	}
	if hostPort {
		fields = append(fields, field("host_port", hostPorts))
	}
	return fields
}

// jevtFields are the json plugin's jevt.* fields (Falco's rules still use them)
// and jevt.time and jevt.time.iso8601, which Falco's built-in k8s audit support
// had.
func jevtFields() []FieldDef {
	return []FieldDef{
		kaField("jevt.value", KindString, ArgKey, jevtValue),
		// The whole event, indented by two spaces as the json plugin prints it.
		kaField("jevt.obj", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			var out bytes.Buffer
			if len(in.Event.Audit.Raw) == 0 || json.Indent(&out, in.Event.Audit.Raw, "", "  ") != nil {
				return Value{}, false
			}
			return Value{Str: out.String()}, true
		}),
		kaField("jevt.rawtime", KindInt, ArgNone, func(in *Input, _ string) (Value, bool) {
			t, ok := auditTime(in)
			return Value{Int: t.UnixNano()}, ok
		}),
		// Falco printed these in the host's time zone; kubetrail uses UTC.
		kaField("jevt.time", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			t, ok := auditTime(in)
			return Value{Str: t.Format("15:04:05.000000000")}, ok
		}),
		kaField("jevt.time.iso8601", KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
			t, ok := auditTime(in)
			return Value{Str: t.Format("2006-01-02T15:04:05.000000000Z")}, ok
		}),
	}
}

func kaField(name string, kind Kind, arg Arg, extract func(in *Input, arg string) (Value, bool)) FieldDef {
	return FieldDef{Name: name, Kind: kind, Arg: arg, Source: SourceK8sAudit, Extract: extract}
}

// kaParsed is a string field kubetrail already parses into Event.Audit (get) and
// whose JSON is at keys. A non-empty parsed value is the plugin's value and spares
// decoding the JSON; an empty one is either a missing member (no value) or an
// empty string (the value ""), which only the JSON tells apart: an authorizer
// that allows a request writes "authorization.k8s.io/reason": "".
func kaParsed(name string, get func(*kubetrail.Audit) string, keys ...string) FieldDef {
	return kaField(name, KindString, ArgNone, func(in *Input, _ string) (Value, bool) {
		if s := get(&in.Event.Audit); s != "" {
			return Value{Str: s}, true
		}
		return pathValue(in, keys...)
	})
}

// kaPath is a string field: the JSON value at keys, as text.
func kaPath(name string, keys ...string) FieldDef {
	return kaField(name, KindString, ArgNone, pathText(keys...))
}

func pathText(keys ...string) func(*Input, string) (Value, bool) {
	return func(in *Input, _ string) (Value, bool) { return pathValue(in, keys...) }
}

func pathValue(in *Input, keys ...string) (Value, bool) {
	v, ok := auditValue(in, keys...)
	if !ok {
		return Value{}, false
	}
	return Value{Str: jsonText(v)}, true
}

// kaListPath is a list field: the elements of the JSON array at keys, as text (a
// role's rules and a binding's subjects are JSON objects). Anything but an array
// there leaves it without a value.
func kaListPath(name string, keys ...string) FieldDef {
	return kaField(name, KindList, ArgNone, func(in *Input, _ string) (Value, bool) {
		v, _ := auditValue(in, keys...)
		arr, ok := v.([]any)
		if !ok {
			return Value{}, false
		}
		return listValue(textsOf(arr))
	})
}

// kaItems is a list field over the items of the JSON array at keys (containers,
// volumes, rules, ports), narrowed to one item by an index argument. Each item
// contributes the values values returns for it; an item for which it returns
// false leaves the whole field without a value.
func kaItems(name string, keys []string, values func(in *Input, item any) ([]string, bool)) FieldDef {
	return kaField(name, KindList, ArgIndex, func(in *Input, arg string) (Value, bool) {
		idx, ok := auditIndex(arg)
		if !ok {
			return Value{}, false
		}
		items, ok := auditItems(in, idx, keys...)
		if !ok {
			return Value{}, false
		}
		var out []string
		for _, item := range items {
			vs, ok := values(in, item)
			if !ok {
				return Value{}, false
			}
			out = append(out, vs...)
		}
		return listValue(out)
	})
}

// member returns an item's value at keys, as text; nothing when it has none.
func member(keys ...string) func(*Input, any) ([]string, bool) {
	return func(_ *Input, item any) ([]string, bool) {
		if v, ok := lookupKeys(item, keys...); ok {
			return []string{jsonText(v)}, true
		}
		return nil, true
	}
}

// memberElements returns the elements of the array an item has at keys, as
// text; nothing when it has none there.
func memberElements(keys ...string) func(*Input, any) ([]string, bool) {
	return func(_ *Input, item any) ([]string, bool) {
		v, _ := lookupKeys(item, keys...)
		arr, _ := v.([]any)
		return textsOf(arr), true
	}
}

// effectiveID returns the user or group ID (key runAsUser or runAsGroup) a
// container starts with: its own securityContext's, else the pod's, else 0, one
// value per container, as documented. (The plugin's extract.go looks both up
// outside securityContext, where the API never puts them, and so answers 0 for
// every container.)
func effectiveID(key string) func(*Input, any) ([]string, bool) {
	return func(in *Input, container any) ([]string, bool) {
		if v, ok := lookupKeys(container, "securityContext", key); ok {
			return []string{jsonText(v)}, true
		}
		if v, ok := auditValue(in, "requestObject", "spec", "securityContext", key); ok {
			return []string{jsonText(v)}, true
		}
		return []string{"0"}, true
	}
}

// hostPorts returns the host ports a container's ports take: hostPort, or
// containerPort when there is none (with hostNetwork, that is the host's port).
// A ports member that is not an array leaves the field without a value.
func hostPorts(_ *Input, container any) ([]string, bool) {
	v, ok := lookupKeys(container, "ports")
	if !ok {
		return nil, true
	}
	ports, ok := v.([]any)
	if !ok {
		return nil, false
	}
	var out []string
	for _, p := range ports {
		if hp, ok := lookupKeys(p, "hostPort"); ok {
			out = append(out, jsonText(hp))
		} else if cp, ok := lookupKeys(p, "containerPort"); ok {
			out = append(out, jsonText(cp))
		}
	}
	return out, true
}

// kaSubjectNames is a list field of the names of a binding's subjects of one kind
// (User, Group, ServiceAccount); withNamespace writes a service account as
// namespace:name.
func kaSubjectNames(name, kind string, withNamespace bool) FieldDef {
	return kaField(name, KindList, ArgNone, func(in *Input, _ string) (Value, bool) {
		subjects, ok := auditItems(in, -1, "requestObject", "subjects")
		if !ok {
			return Value{}, false
		}
		var names []string
		for _, s := range subjects {
			obj, _ := s.(map[string]any)
			n, isStr := obj["name"].(string)
			if obj["kind"] != kind || !isStr {
				continue
			}
			if withNamespace {
				ns, _ := obj["namespace"].(string)
				n = ns + ":" + n
			}
			names = append(names, n)
		}
		return listValue(names)
	})
}

// firstImage returns the first container's image, through form.
func firstImage(in *Input, form func(string) string) (Value, bool) {
	containers, ok := auditItems(in, 0, "requestObject", "spec", "containers")
	if !ok {
		return Value{}, false
	}
	image, ok := lookupKeys(containers[0], "image")
	if !ok {
		return Value{}, false
	}
	return Value{Str: form(jsonText(image))}, true
}

// imageRepository returns the repository of a container image reference, without
// its tag or digest: "falcosecurity/falco:0.38" and "nginx@sha256:..." give
// "falcosecurity/falco" and "nginx". The plugin cuts at the first ':' and then
// at the first '@', which also cuts a registry's port off with everything after
// it ("registry:5000/app:1" gives "registry"); here a ':' ends the repository
// only after the last '/', so that one gives "registry:5000/app". The two agree
// on every reference without a port.
func imageRepository(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return repo
}

// uriParam is ka.uri.param[key]: the first value of the query parameter key in
// the request URI. A query that does not parse gives no value for any key, as in
// the plugin.
func uriParam(in *Input, key string) (Value, bool) {
	uri := in.Event.Audit.URI
	if uri == "" {
		v, ok := auditValue(in, "requestURI")
		if !ok {
			return Value{}, false
		}
		uri = jsonText(v)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return Value{}, false
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil || len(query[key]) == 0 {
		return Value{}, false
	}
	return Value{Str: query[key][0]}, true
}

// volumeHostPath is ka.req.volume.hostpath[path]: "true" when a hostPath volume
// mounts path, or a path starting with prefix when the argument is "prefix*";
// "false" when none does; no value when the request has no volumes array.
func volumeHostPath(in *Input, arg string) (Value, bool) {
	volumes, ok := auditItems(in, -1, "requestObject", "spec", "volumes")
	if !ok || arg == "" {
		return Value{}, false
	}
	prefix, isPrefix := strings.CutSuffix(arg, "*")
	for _, vol := range volumes {
		v, ok := lookupKeys(vol, "hostPath", "path")
		if !ok {
			continue
		}
		if path := jsonText(v); path == arg || isPrefix && strings.HasPrefix(path, prefix) {
			return Value{Str: "true"}, true
		}
	}
	return Value{Str: "false"}, true
}

// jevtParsed answers jevt.value for JSON pointers the shipped rules test on every
// event (the kevt macro reads jevt.value[/stage]) from the parsed event, so that
// an event no other condition looks into is never decoded.
var jevtParsed = map[string]func(*kubetrail.Audit) string{
	"/stage":              func(a *kubetrail.Audit) string { return a.Stage },
	"/verb":               func(a *kubetrail.Audit) string { return a.Verb },
	"/requestURI":         func(a *kubetrail.Audit) string { return a.URI },
	"/user/username":      func(a *kubetrail.Audit) string { return a.UserName },
	"/objectRef/resource": func(a *kubetrail.Audit) string { return a.Resource },
}

// jevtValue is jevt.value[pointer]: the value at a JSON pointer in the event, as
// text.
func jevtValue(in *Input, pointer string) (Value, bool) {
	if get, ok := jevtParsed[pointer]; ok {
		if s := get(&in.Event.Audit); s != "" {
			return Value{Str: s}, true
		}
	}
	v, ok := lookupJSONPointer(in.Audit(), pointer)
	if !ok {
		return Value{}, false
	}
	return Value{Str: jsonText(v)}, true
}

// lookupJSONPointer resolves a JSON pointer (RFC 6901) in doc as the json plugin
// does: the leading '/' may be left out, each token is unescaped ("~1" to '/',
// then "~0" to '~', so that "authorization.k8s.io~1decision" names the member
// "authorization.k8s.io/decision"), and a token indexes an array when it is a
// decimal index within it. An empty pointer resolves to nothing.
func lookupJSONPointer(doc any, pointer string) (any, bool) {
	if pointer == "" {
		return nil, false
	}
	v := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// auditTime is the event's time for Falco: the k8saudit plugin stamps an event
// with its stageTimestamp. An event read without one (audit.k8s.io/v1beta1 logs
// may lack it) falls back to the time it was received.
func auditTime(in *Input) (time.Time, bool) {
	t := in.Event.Audit.StageTime
	if t.IsZero() {
		t = in.Event.Time
	}
	return t.UTC(), !t.IsZero()
}

// auditValue returns the value at keys in the event's audit JSON, each key naming
// an object's member; ok is false when one is missing.
func auditValue(in *Input, keys ...string) (any, bool) {
	return lookupKeys(in.Audit(), keys...)
}

func lookupKeys(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		obj, _ := v.(map[string]any)
		var ok bool
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// auditItems returns the JSON array at keys, or only its item idx when idx is not
// -1. ok is false when there is no array there or idx is past its end.
func auditItems(in *Input, idx int, keys ...string) ([]any, bool) {
	v, _ := auditValue(in, keys...)
	arr, ok := v.([]any)
	switch {
	case !ok:
		return nil, false
	case idx < 0:
		return arr, true
	case idx >= len(arr):
		return nil, false
	}
	return arr[idx : idx+1], true
}

// auditIndex reads the optional index argument of a list field: -1 when there is
// none.
func auditIndex(arg string) (int, bool) {
	if arg == "" {
		return -1, true
	}
	n, err := strconv.Atoi(arg)
	return n, err == nil && n >= 0
}

// jsonText renders a JSON value as the plugins do: a string as itself, anything
// else as its compact JSON. A number keeps its shortest decimal form ("1000",
// "2.5"). An object's members come out sorted by name, where the plugins keep
// the request's order (the decoded JSON no longer has it): that only changes how
// an output reads.
func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return ""
	}
	return strings.TrimSuffix(out.String(), "\n")
}

func textsOf(arr []any) []string {
	var out []string
	for _, v := range arr {
		out = append(out, jsonText(v))
	}
	return out
}

// listValue is a list field's value; an empty list is no value, as in Falco.
func listValue(l []string) (Value, bool) {
	if len(l) == 0 {
		return Value{}, false
	}
	return Value{List: l}, true
}

func presentString(s string) (Value, bool) {
	return Value{Str: s}, s != ""
}
