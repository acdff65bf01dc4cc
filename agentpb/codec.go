// Package agentpb is the agent protocol: the protobuf batch a node agent sends to
// POST /api/v1/events (agent.proto), its conversion to and from kubetrail's event
// model, and the checks that make a bad batch fail whole with a precise reason.
package agentpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative agent.proto

import (
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kubetrail/kubetrail"
)

// Version is the protocol version this package speaks.
const Version = 1

// Limits on one batch; larger batches must be split by the sender.
const (
	MaxEvents     = 100_000
	MaxEventBytes = 64 << 10 // one event, encoded
	MaxInventory  = 100_000
)

// ContentType is the media type of an encoded batch.
const ContentType = "application/x-protobuf"

var categories = map[Category]kubetrail.Category{
	Category_CATEGORY_PROCESS: kubetrail.CategoryProcess,
	Category_CATEGORY_NETWORK: kubetrail.CategoryNetwork,
	Category_CATEGORY_FILE:    kubetrail.CategoryFile,
	Category_CATEGORY_GAP:     kubetrail.CategoryGap,
}

var categoryCodes = map[kubetrail.Category]Category{
	kubetrail.CategoryProcess: Category_CATEGORY_PROCESS,
	kubetrail.CategoryNetwork: Category_CATEGORY_NETWORK,
	kubetrail.CategoryFile:    Category_CATEGORY_FILE,
	kubetrail.CategoryGap:     Category_CATEGORY_GAP,
}

// Encode marshals a batch. Events must be runtime events (process, network, file).
func Encode(b *kubetrail.Batch) ([]byte, error) {
	pb := &Batch{Version: Version, Stream: b.Stream,
		Events: make([]*Event, len(b.Events)), Inventory: make([]*InventoryObject, len(b.Inventory))}
	for i := range b.Events {
		pe, err := fromEvent(&b.Events[i])
		if err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
		pb.Events[i] = pe
	}
	for i := range b.Inventory {
		o := &b.Inventory[i]
		pb.Inventory[i] = &InventoryObject{TimeUnixNano: o.Time.UnixNano(), Cluster: o.Cluster, Kind: o.Kind,
			Namespace: o.Namespace, Name: o.Name, Uid: o.UID, Ips: o.IPs, Node: o.Node,
			WorkloadKind: o.WorkloadKind, WorkloadName: o.WorkloadName, Deleted: o.Deleted}
	}
	return proto.Marshal(pb)
}

// fromEvent converts one event to its protobuf form.
func fromEvent(e *kubetrail.Event) (*Event, error) {
	cat, ok := categoryCodes[e.Category]
	if !ok {
		return nil, fmt.Errorf("category %q cannot be sent by an agent", e.Category)
	}
	pe := &Event{
		Seq: e.Seq, TimeUnixNano: e.Time.UnixNano(), Category: cat, Type: e.Type, Result: e.Result,
		Cluster: e.Cluster, Node: e.Node, Namespace: e.Namespace, WorkloadKind: e.WorkloadKind, WorkloadName: e.WorkloadName,
		PodName: e.PodName, PodUid: e.PodUID, ContainerId: e.ContainerID, ContainerName: e.ContainerName,
		ImageRepository: e.ImageRepository, ImageTag: e.ImageTag, SessionId: e.SessionID, Lost: e.Lost,
		Process: &Process{Name: e.Process.Name, ExePath: e.Process.ExePath, Argv: e.Process.Argv, Pid: e.Process.PID,
			Ppid: e.Process.PPID, ParentName: e.Process.ParentName, Cwd: e.Process.Cwd, Tty: e.Process.TTY, Uid: e.Process.UID,
			UserName: e.Process.UserName, LoginUid: e.Process.LoginUID, Gid: e.Process.GID, ExecId: e.Process.ExecID,
			ParentExecId: e.Process.ParentExecID, ExitCode: e.Process.ExitCode, ExecAuditId: e.Process.ExecAuditID},
	}
	if e.Category == kubetrail.CategoryNetwork {
		n := &e.Network
		pe.Network = &Network{L4Proto: n.L4Proto, Direction: n.Direction, ClientIp: n.ClientIP,
			ClientPort: n.ClientPort, ServerIp: n.ServerIP, ServerPort: n.ServerPort}
	}
	if e.Category == kubetrail.CategoryFile {
		pe.File = &File{Path: e.File.Path, TargetPath: e.File.TargetPath}
	}
	return pe, nil
}

// Decode unmarshals and checks a batch. Any problem refuses the whole batch with an
// *kubetrail.Error that says which event and what.
func Decode(data []byte) (*kubetrail.Batch, error) {
	var pb Batch
	if err := proto.Unmarshal(data, &pb); err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "batch is not a valid agent protocol message: %v", err)
	}
	if pb.Version != Version {
		return nil, kubetrail.ErrorAt(kubetrail.EINVALID, "version", "protocol version %d is not supported; this server speaks version %d", pb.Version, Version)
	}
	if err := kubetrail.ValidStream(pb.Stream); err != nil {
		return nil, kubetrail.ErrorAt(kubetrail.EINVALID, "stream", "%v", err)
	}
	if len(pb.Events) > MaxEvents {
		return nil, kubetrail.Errorf(kubetrail.ETOOLARGE, "batch has %d events; at most %d are allowed, split it", len(pb.Events), MaxEvents)
	}
	if len(pb.Inventory) > MaxInventory {
		return nil, kubetrail.Errorf(kubetrail.ETOOLARGE, "batch has %d inventory objects; at most %d are allowed", len(pb.Inventory), MaxInventory)
	}
	b := &kubetrail.Batch{Stream: pb.Stream, Events: make([]kubetrail.Event, len(pb.Events))}
	var prev uint64
	for i, pe := range pb.Events {
		where := fmt.Sprintf("events[%d]", i)
		if n := proto.Size(pe); n > MaxEventBytes {
			return nil, kubetrail.ErrorAt(kubetrail.ETOOLARGE, where, "event is %d bytes; at most %d are allowed", n, MaxEventBytes)
		}
		if pe.Seq == 0 {
			return nil, kubetrail.ErrorAt(kubetrail.EINVALID, where, "seq is missing; sequence numbers start at 1")
		}
		if pe.Seq <= prev {
			return nil, kubetrail.ErrorAt(kubetrail.EINVALID, where, "seq %d does not follow %d; events must be in increasing seq order", pe.Seq, prev)
		}
		prev = pe.Seq
		if err := toEvent(pb.Stream, pe, &b.Events[i]); err != nil {
			return nil, kubetrail.ErrorAt(kubetrail.EINVALID, where, "%v", err)
		}
	}
	for i, po := range pb.Inventory {
		o, err := toInventory(po)
		if err != nil {
			return nil, kubetrail.ErrorAt(kubetrail.EINVALID, fmt.Sprintf("inventory[%d]", i), "%v", err)
		}
		b.Inventory = append(b.Inventory, o)
	}
	return b, nil
}

// Event times must be plausible: after 2000 and not more than a day ahead of the
// server's clock (agents' clocks drift; a far-future time would sit at the top of
// every newest-first page forever).
var minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func checkTime(ns int64) (time.Time, error) {
	t := time.Unix(0, ns).UTC()
	if ns == 0 {
		return t, fmt.Errorf("time is missing")
	}
	return t, plausible(t)
}

func plausible(t time.Time) error {
	if t.Before(minTime) || t.After(time.Now().Add(24*time.Hour)) {
		return fmt.Errorf("time %s is implausible", t.Format(time.RFC3339Nano))
	}
	return nil
}

// toEvent converts a decoded event and checks it.
func toEvent(stream string, pe *Event, e *kubetrail.Event) error {
	cat, ok := categories[pe.Category]
	if !ok {
		return fmt.Errorf("category %d is not process (1), network (2), file (3) or gap (4)", pe.Category)
	}
	if pe.TimeUnixNano == 0 {
		return fmt.Errorf("time is missing")
	}
	*e = kubetrail.Event{Stream: stream, Seq: pe.Seq, Time: time.Unix(0, pe.TimeUnixNano).UTC(), Category: cat, Type: pe.Type, Result: pe.Result,
		Cluster: pe.Cluster, Node: pe.Node, Namespace: pe.Namespace, WorkloadKind: pe.WorkloadKind, WorkloadName: pe.WorkloadName,
		PodName: pe.PodName, PodUID: pe.PodUid, ContainerID: pe.ContainerId, ContainerName: pe.ContainerName,
		ImageRepository: pe.ImageRepository, ImageTag: pe.ImageTag, SessionID: pe.SessionId, Lost: pe.Lost}
	if p := pe.Process; p != nil && cat != kubetrail.CategoryGap {
		e.Process = kubetrail.Process{Name: p.Name, ExePath: p.ExePath, Argv: p.Argv, PID: p.Pid, PPID: p.Ppid,
			ParentName: p.ParentName, Cwd: p.Cwd, TTY: p.Tty, UID: p.Uid, UserName: p.UserName, LoginUID: p.LoginUid,
			GID: p.Gid, ExecID: p.ExecId, ParentExecID: p.ParentExecId, ExitCode: p.ExitCode, ExecAuditID: p.ExecAuditId}
	}
	switch cat {
	case kubetrail.CategoryNetwork:
		n := pe.Network
		if n == nil {
			return fmt.Errorf("a network event needs network")
		}
		e.Network = kubetrail.Network{L4Proto: n.L4Proto, Direction: n.Direction, ClientIP: n.ClientIp,
			ClientPort: n.ClientPort, ServerIP: n.ServerIp, ServerPort: n.ServerPort}
	case kubetrail.CategoryFile:
		if f := pe.File; f != nil {
			e.File = kubetrail.File{Path: f.Path, TargetPath: f.TargetPath}
		}
	}
	return CheckEvent(e)
}

// CheckEvent reports why the server would refuse a runtime event, or nil: the
// server checks every event it decodes with it, and an agent drops (and counts)
// such an event rather than have its whole batch refused.
func CheckEvent(e *kubetrail.Event) error {
	if _, ok := categoryCodes[e.Category]; !ok {
		return fmt.Errorf("category %q cannot be sent by an agent", e.Category)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("time is missing")
	}
	if err := plausible(e.Time); err != nil {
		return err
	}
	if e.Node == "" {
		return fmt.Errorf("node is missing")
	}
	if e.Type == "" {
		return fmt.Errorf("type is missing")
	}
	switch e.Category {
	case kubetrail.CategoryProcess:
		if e.Process.Name == "" {
			return fmt.Errorf("a process event needs process.name")
		}
	case kubetrail.CategoryNetwork:
		n := &e.Network
		if n.L4Proto != "tcp" && n.L4Proto != "udp" {
			return fmt.Errorf("network.l4proto %q is not tcp or udp", n.L4Proto)
		}
		if n.Direction != kubetrail.DirectionOutbound && n.Direction != kubetrail.DirectionInbound {
			return fmt.Errorf("network.direction %q is not outbound or inbound", n.Direction)
		}
		for _, a := range []struct {
			name, ip string
			port     int64
		}{{"client", n.ClientIP, n.ClientPort}, {"server", n.ServerIP, n.ServerPort}} {
			if _, err := netip.ParseAddr(a.ip); err != nil {
				return fmt.Errorf("network.%s_ip %q is not an IP address", a.name, a.ip)
			}
			if a.port < 0 || a.port > 65535 {
				return fmt.Errorf("network.%s_port %d is out of range", a.name, a.port)
			}
		}
	case kubetrail.CategoryFile:
		if e.File.Path == "" {
			return fmt.Errorf("a file event needs file.path")
		}
	case kubetrail.CategoryGap:
		if e.Lost <= 0 {
			return fmt.Errorf("a gap needs lost > 0")
		}
	}
	return nil
}

func toInventory(po *InventoryObject) (kubetrail.InventoryObject, error) {
	t, err := checkTime(po.TimeUnixNano)
	if err != nil {
		return kubetrail.InventoryObject{}, err
	}
	switch po.Kind {
	case kubetrail.ObjectPod, kubetrail.ObjectService, kubetrail.ObjectNode:
	default:
		return kubetrail.InventoryObject{}, fmt.Errorf("kind %q is not pod, service or node", po.Kind)
	}
	if po.Name == "" {
		return kubetrail.InventoryObject{}, fmt.Errorf("name is missing")
	}
	for _, ip := range po.Ips {
		if _, err := netip.ParseAddr(ip); err != nil {
			return kubetrail.InventoryObject{}, fmt.Errorf("ips: %q is not an IP address", ip)
		}
	}
	return kubetrail.InventoryObject{Time: t, Cluster: po.Cluster, Kind: po.Kind, Namespace: po.Namespace, Name: po.Name,
		UID: po.Uid, IPs: po.Ips, Node: po.Node, WorkloadKind: po.WorkloadKind, WorkloadName: po.WorkloadName, Deleted: po.Deleted}, nil
}
