package agentpb

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 1, time.UTC)

func sample() *kubetrail.Batch {
	base := kubetrail.Event{Stream: "node-1.x", Time: t0, Cluster: "c", Node: "node-1", Namespace: "billing",
		WorkloadKind: "Deployment", WorkloadName: "api", PodName: "api-1", PodUID: "u", ContainerID: "abc",
		ContainerName: "app", ImageRepository: "r/api", ImageTag: "1", SessionID: "s1",
		Process: kubetrail.Process{Name: "curl", ExePath: "/usr/bin/curl", Argv: []string{"curl", "-v"}, PID: 10, PPID: 9,
			ParentName: "bash", Cwd: "/", TTY: 34816, UID: 1000, UserName: "app", LoginUID: -1, GID: 1000, ExecID: "e1", ParentExecID: "e0", ExitCode: 0}}
	p, n, f := base, base, base
	p.Seq, p.Category, p.Type, p.Result = 1, kubetrail.CategoryProcess, "execve", "SUCCESS"
	n.Seq, n.Category, n.Type, n.Result = 2, kubetrail.CategoryNetwork, "connect", "ECONNREFUSED"
	n.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.0.0.1", ClientPort: 1234, ServerIP: "2001:db8::1", ServerPort: 443}
	f.Seq, f.Category, f.Type, f.Result = 3, kubetrail.CategoryFile, "rename", "SUCCESS"
	f.File = kubetrail.File{Path: "/a", TargetPath: "/b"}
	return &kubetrail.Batch{Stream: "node-1.x", Events: []kubetrail.Event{p, n, f},
		Inventory: []kubetrail.InventoryObject{{Time: t0, Cluster: "c", Kind: "pod", Namespace: "billing", Name: "api-1", UID: "u", IPs: []string{"10.0.0.1"}, Node: "node-1", WorkloadKind: "Deployment", WorkloadName: "api"}}}
}

func TestRoundTrip(t *testing.T) {
	b := sample()
	data, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, b)
	}
}

func TestDecodeRefusesWithReason(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(b *kubetrail.Batch)
		where string
		msg   string
	}{
		{"bad stream", func(b *kubetrail.Batch) { b.Stream = "a/b" }, "stream", "only letters"},
		{"seq zero", func(b *kubetrail.Batch) { b.Events[0].Seq = 0 }, "events[0]", "seq is missing"},
		{"seq repeats", func(b *kubetrail.Batch) { b.Events[1].Seq = 1 }, "events[1]", "does not follow"},
		{"no time", func(b *kubetrail.Batch) { b.Events[2].Time = time.Unix(0, 0) }, "events[2]", "time is missing"},
		{"future", func(b *kubetrail.Batch) { b.Events[2].Time = time.Now().Add(48 * time.Hour) }, "events[2]", "implausible"},
		{"no node", func(b *kubetrail.Batch) { b.Events[0].Node = "" }, "events[0]", "node is missing"},
		{"no proc name", func(b *kubetrail.Batch) { b.Events[0].Process.Name = "" }, "events[0]", "process.name"},
		{"bad proto", func(b *kubetrail.Batch) { b.Events[1].Network.L4Proto = "sctp" }, "events[1]", "sctp"},
		{"bad port", func(b *kubetrail.Batch) { b.Events[1].Network.ServerPort = 70000 }, "events[1]", "out of range"},
		{"no path", func(b *kubetrail.Batch) { b.Events[2].File.Path = "" }, "events[2]", "file.path"},
		{"bad inventory kind", func(b *kubetrail.Batch) { b.Inventory[0].Kind = "deployment" }, "inventory[0]", "deployment"},
		{"bad inventory ip", func(b *kubetrail.Batch) { b.Inventory[0].IPs = []string{"10.0.0"} }, "inventory[0]", "10.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := sample()
			c.edit(b)
			data, err := Encode(b)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decode(data)
			e, ok := err.(*kubetrail.Error)
			if !ok || e.Code != kubetrail.EINVALID || e.Where != c.where || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("got %#v, want invalid at %s mentioning %q", err, c.where, c.msg)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	data, _ := Encode(sample())
	f.Add(data)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			if _, ok := err.(*kubetrail.Error); !ok {
				t.Fatalf("error is not a domain error: %v", err)
			}
			return
		}
		// An accepted batch is well-formed and survives a round trip.
		for i := range b.Events {
			if b.Events[i].Seq == 0 || b.Events[i].Time.IsZero() || !b.Events[i].Category.Valid() {
				t.Fatalf("accepted a malformed event: %+v", b.Events[i])
			}
		}
		again, err := Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded batch refused: %v", err)
		}
	})
}
