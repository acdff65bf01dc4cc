// Package agent is kubetrail's node agent: it turns the kernel sensor's records
// into events stamped with their container, numbers them on the agent's stream,
// and hands them in batches to a durable spool from which they are shipped.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/agentpb"
	"github.com/kubetrail/kubetrail/cgroup"
	"github.com/kubetrail/kubetrail/cri"
	"github.com/kubetrail/kubetrail/ebpf"
)

// Source yields kernel records; *ebpf.Sensor is one.
type Source interface {
	Read() (ebpf.Record, error)
}

// Containers names the container of a cgroup; *cgroup.Resolver is one.
type Containers interface {
	Lookup(cgroupID uint64) (cgroup.Container, bool)
}

// Pods names the pod and container of a container id, as the container runtime
// knows them; *cri.Client is one.
type Pods interface {
	Lookup(ctx context.Context, containerID string) (cri.Info, bool, error)
}

// Stopper is a Source that can stop recording and then deliver what it still
// holds before its Read ends; *ebpf.Sensor is one.
type Stopper interface {
	Stop()
}

// LossCounter reports records the kernel could not deliver; *ebpf.Sensor is one.
type LossCounter interface {
	Lost() (map[ebpf.Kind]uint64, map[ebpf.Kind][]uint64, error)
}

// Sink takes finished batches; the spool is one, so a batch is durable on disk
// before the agent forgets it. Put must not keep the batch or its events once it
// returns: the agent reuses their memory for the next batch.
type Sink interface {
	Put(ctx context.Context, b *kubetrail.Batch) error
}

// Config says who the agent is.
type Config struct {
	Cluster string
	Node    string
	// Stream names this run's event stream; by default it is derived from the node,
	// the boot and the agent's start, so that sequence numbers restart safely.
	Stream string
	// A batch is sent when it holds BatchEvents events or is FlushInterval old.
	BatchEvents   int
	FlushInterval time.Duration
	// ProcRoot is where /proc is (tests and containers may mount it elsewhere).
	ProcRoot string
	// Pods, when set, names each container's pod, namespace, container and image.
	Pods Pods
	// ExcludePaths are path prefixes whose file changes are not recorded. The
	// sensor drops absolute paths under them in the kernel; the agent drops
	// relative ones once it has resolved them.
	ExcludePaths []string
}

// DefaultExcludePaths are pseudo file systems whose "files" change all the time and
// mean nothing to an investigation.
var DefaultExcludePaths = []string{"/proc", "/sys", "/dev"}

// Agent converts records to events and batches them.
type Agent struct {
	cfg        Config
	src        Source
	containers Containers
	sink       Sink
	log        *slog.Logger

	bootID string
	seq    uint64
	procs  map[uint32]*process
	batch  []kubetrail.Event
	// lost is the sensor's loss count at the last gap recorded, per kind.
	lost map[ebpf.Kind]uint64

	// Invalid counts events dropped because the server would refuse them.
	Invalid atomic.Int64
}

// process is what the agent remembers of a running process, to describe the
// process behind each connection it makes.
type process struct {
	startNS uint64
	execID  string
	pexecID string
	name    string
	exePath string
	argv    []string
	ppid    uint32
	pname   string
	cwd     string
	// container is the container id the process runs in, "" on the host.
	container string
	// session is the exec id of the process that entered the container from
	// outside it and from which this one descends; "" on the host.
	session string
	// execAuditID is, for a session's entry, KUBERNETES_EXEC_AUDIT_ID from its
	// environment (KEP-6035).
	execAuditID string
}

// sessionOf says which session process p of a container belongs to, given its
// parent: the parent's when the parent is in the same container, else a new one
// that p opens (its parent is outside: the runtime started it, for a CRI exec or
// as the container's init). Host processes have none, and neither has the
// runtime's own plumbing that passes through the container on the way in (runc
// init and its children): the session starts with the program it runs.
func sessionOf(p, parent *process) string {
	switch {
	case p.container == "" || p.runtime():
		return ""
	case parent != nil && parent.container == p.container && !parent.runtime() && parent.session != "":
		return parent.session
	}
	return p.execID
}

// runtime reports whether the process is the container runtime's, which joins a
// container's cgroup to start a process in it: runc renames its stages
// runc:[0:PARENT], runc:[1:CHILD] and runc:[2:INIT]; crun is crun.
func (p *process) runtime() bool {
	return strings.HasPrefix(p.name, "runc") || p.name == "crun" || filepath.Base(p.exePath) == "runc" || filepath.Base(p.exePath) == "crun"
}

// New returns an agent reading src and writing to sink.
func New(cfg Config, src Source, containers Containers, sink Sink, log *slog.Logger) (*Agent, error) {
	if cfg.Node == "" {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "the agent needs a node name")
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.ExcludePaths == nil {
		cfg.ExcludePaths = DefaultExcludePaths
	}
	if cfg.BatchEvents <= 0 {
		cfg.BatchEvents = 5000
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	boot, err := os.ReadFile(filepath.Join(cfg.ProcRoot, "sys/kernel/random/boot_id"))
	if err != nil {
		return nil, fmt.Errorf("read the boot id: %w", err)
	}
	a := &Agent{cfg: cfg, src: src, containers: containers, sink: sink, log: log,
		bootID: strings.ReplaceAll(strings.TrimSpace(string(boot)), "-", "")[:8], procs: map[uint32]*process{},
		batch: make([]kubetrail.Event, 0, cfg.BatchEvents+8)} // room for the gap events too
	if a.cfg.Stream == "" {
		a.cfg.Stream = fmt.Sprintf("%s.%s.%d", cfg.Node, a.bootID, time.Now().UnixNano())
	}
	if err := kubetrail.ValidStream(a.cfg.Stream); err != nil {
		return nil, kubetrail.Errorf(kubetrail.EINVALID, "stream %q: %v", a.cfg.Stream, err)
	}
	a.seedFromProc()
	return a, nil
}

// Stream returns the stream the agent numbers its events on.
func (a *Agent) Stream() string { return a.cfg.Stream }

// Run converts records until ctx ends or the source is closed, then flushes.
func (a *Agent) Run(ctx context.Context) error {
	records := make(chan ebpf.Record, 4096)
	readErr := make(chan error, 1)
	go func() {
		for {
			r, err := a.src.Read()
			if err != nil {
				readErr <- err
				close(records)
				return
			}
			records <- r
		}
	}()
	tick := time.NewTicker(a.cfg.FlushInterval)
	defer tick.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	done := ctx.Done()
	for {
		select {
		case r, ok := <-records:
			if !ok {
				err := <-readErr
				a.recordGaps()
				if ferr := a.flush(context.WithoutCancel(ctx)); ferr != nil {
					return ferr
				}
				if errors.Is(err, ebpf.ErrClosed) {
					return nil
				}
				return err
			}
			// Convert straight into the batch's next slot: an event is large, and
			// copying it (and growing the batch from nothing after each flush) was
			// most of the agent's CPU at high rates.
			a.batch = append(a.batch, kubetrail.Event{})
			if !a.convert(&r, &a.batch[len(a.batch)-1]) {
				a.batch = a.batch[:len(a.batch)-1]
			} else if len(a.batch) >= a.cfg.BatchEvents {
				if err := a.flush(ctx); err != nil {
					return err
				}
			}
		case <-sweep.C:
			a.sweep()
		case <-tick.C:
			a.recordGaps()
			if err := a.flush(ctx); err != nil {
				return err
			}
		case <-done:
			stopper, ok := a.src.(Stopper)
			if !ok {
				a.recordGaps()
				return a.flush(context.WithoutCancel(ctx))
			}
			// Stop recording, then drain: the records channel closes once the
			// source has handed over everything it held.
			stopper.Stop()
			done = nil
			ctx = context.WithoutCancel(ctx)
		}
	}
}

// sweep forgets processes that are gone. Exits normally remove them, but an exit
// record can be lost, and without this the table would grow with every one.
func (a *Agent) sweep() {
	for pid, p := range a.procs {
		start, _, ok := a.readStat(pid)
		if !ok || ticks(start) != ticks(p.startNS) {
			delete(a.procs, pid)
		}
	}
}

// recordGaps adds a gap event for every kind of record the sensor lost since the
// last one, so that the trail itself says that, and how much, is missing.
func (a *Agent) recordGaps() {
	lc, ok := a.src.(LossCounter)
	if !ok {
		return
	}
	total, _, err := lc.Lost()
	if err != nil {
		a.log.Warn("read the sensor's loss counters", "err", err)
		return
	}
	if a.lost == nil {
		a.lost = map[ebpf.Kind]uint64{}
	}
	for _, k := range []ebpf.Kind{ebpf.KindExec, ebpf.KindExit, ebpf.KindConnect, ebpf.KindAccept, ebpf.KindFile} {
		if n := total[k]; n > a.lost[k] {
			a.seq++
			a.batch = append(a.batch, kubetrail.Event{Stream: a.cfg.Stream, Seq: a.seq, Time: time.Now().UTC(),
				Category: kubetrail.CategoryGap, Type: k.String(), Cluster: a.cfg.Cluster, Node: a.cfg.Node, Lost: int64(n - a.lost[k])})
			a.log.Warn("the sensor lost records", "kind", k, "lost", n-a.lost[k])
			a.lost[k] = n
		}
	}
}

func (a *Agent) flush(ctx context.Context) error {
	// An event the server would refuse is dropped here, with a log line, rather
	// than have the whole batch refused: sequence numbers may have gaps.
	kept := 0
	for i := range a.batch {
		if err := agentpb.CheckEvent(&a.batch[i]); err != nil {
			a.Invalid.Add(1)
			a.log.Warn("dropped an event the server would refuse", "type", a.batch[i].Type, "err", err)
			continue
		}
		if kept != i { // events are large: move one only when an earlier one was dropped
			a.batch[kept] = a.batch[i]
		}
		kept++
	}
	a.batch = a.batch[:kept]
	if len(a.batch) == 0 {
		return nil
	}
	b := &kubetrail.Batch{Stream: a.cfg.Stream, Events: a.batch}
	if err := a.sink.Put(ctx, b); err != nil {
		return fmt.Errorf("spool a batch of %d events: %w", len(a.batch), err)
	}
	// The sink is done with the batch when Put returns, so its memory is reused.
	clear(a.batch)
	a.batch = a.batch[:0]
	return nil
}

// convert turns a record into the event e, which it overwrites; records of no
// interest give false.
func (a *Agent) convert(r *ebpf.Record, e *kubetrail.Event) bool {
	*e = kubetrail.Event{Time: r.Time.UTC(), Cluster: a.cfg.Cluster, Node: a.cfg.Node, Stream: a.cfg.Stream, Result: "SUCCESS"}
	if c, ok := a.containers.Lookup(r.CgroupID); ok {
		e.ContainerID, e.PodUID = c.ID, c.PodUID
		a.name(e)
	}
	p := a.procs[r.PID]
	switch r.Kind {
	case ebpf.KindExec:
		parent := a.procs[r.PPID]
		p = &process{startNS: r.StartNS, execID: a.execID(r.PID, r.StartNS), pexecID: a.execID(r.PPID, r.ParentStartNS),
			name: r.Comm, exePath: r.Filename, argv: r.Argv, ppid: r.PPID, cwd: r.Cwd}
		if parent != nil {
			p.pname = parent.name
		} else {
			p.pname = a.readComm(r.PPID)
		}
		if !strings.HasPrefix(p.exePath, "/") && p.cwd != "" {
			p.exePath = filepath.Join(p.cwd, p.exePath)
		}
		p.container = e.ContainerID
		p.session = sessionOf(p, parent)
		if p.session == p.execID {
			// Kubernetes 1.35+ (KEP-6035) tells the exec'd process which request
			// started it. Read at the entry only: sessions are few, and the
			// environment is the kernel's copy of what execve was given.
			p.execAuditID = a.readEnv(r.PID, "KUBERNETES_EXEC_AUDIT_ID")
		}
		a.procs[r.PID] = p
		e.Category, e.Type = kubetrail.CategoryProcess, "execve"
	case ebpf.KindExit:
		e.Category, e.Type = kubetrail.CategoryProcess, "exit"
		e.Process.ExitCode = int64(r.ExitCode)
		delete(a.procs, r.PID)
	case ebpf.KindConnect, ebpf.KindAccept:
		e.Category, e.Network.L4Proto = kubetrail.CategoryNetwork, "tcp"
		if r.Protocol == 17 {
			e.Network.L4Proto = "udp"
		}
		e.Type, e.Network.Direction = "connect", kubetrail.DirectionOutbound
		if r.Kind == ebpf.KindAccept {
			e.Type, e.Network.Direction = "accept", kubetrail.DirectionInbound
		}
		e.Network.ClientIP, e.Network.ClientPort = r.Src.Addr().String(), int64(r.Src.Port())
		e.Network.ServerIP, e.Network.ServerPort = r.Dst.Addr().String(), int64(r.Dst.Port())
		if r.Errno != 0 {
			e.Result = errnoName(r.Errno)
		}
	case ebpf.KindFile:
		e.Category, e.Type = kubetrail.CategoryFile, r.FileOp.String()
		e.File.Path = a.resolve(r, r.Path, r.DirFD)
		if r.NewPath != "" {
			e.File.TargetPath = a.resolve(r, r.NewPath, r.NewDirFD)
		}
		if e.File.Path == "" || a.excluded(e.File.Path) {
			return false // nothing to name, or not worth recording
		}
		if r.Errno != 0 {
			e.Result = errnoName(r.Errno)
		}
	default:
		return false
	}
	if p == nil || ticks(p.startNS) != ticks(r.StartNS) {
		// A process the agent has not seen exec (it started before the agent, or
		// its exec record was lost): describe it from what the record carries.
		p = &process{startNS: r.StartNS, execID: a.execID(r.PID, r.StartNS), pexecID: a.execID(r.PPID, r.ParentStartNS),
			name: r.Comm, ppid: r.PPID, pname: a.readComm(r.PPID), argv: a.readCmdline(r.PID), exePath: a.readLink(r.PID, "exe"),
			container: e.ContainerID}
		p.session = sessionOf(p, a.procs[r.PPID])
		if r.Kind != ebpf.KindExit {
			a.procs[r.PID] = p
		}
	}
	a.seq++
	e.Seq = a.seq
	e.SessionID = p.session
	e.Process = kubetrail.Process{Name: p.name, ExePath: p.exePath, Argv: p.argv, PID: int64(r.PID), PPID: int64(r.PPID),
		ParentName: p.pname, Cwd: p.cwd, TTY: int64(r.TTY), UID: int64(r.UID), GID: int64(r.GID), LoginUID: loginUID(r.LoginUID),
		ExecID: p.execID, ParentExecID: p.pexecID, ExitCode: e.Process.ExitCode, ExecAuditID: p.execAuditID}
	if e.Category != kubetrail.CategoryProcess {
		e.Process.Cwd = "" // cwd is a field of executions only
	}
	return true
}

// name fills in what the container runtime knows of the event's container. When
// the runtime is down the event goes on without names, rather than waiting.
func (a *Agent) name(e *kubetrail.Event) {
	if a.cfg.Pods == nil {
		return
	}
	info, ok, err := a.cfg.Pods.Lookup(context.Background(), e.ContainerID)
	if err != nil || !ok {
		return
	}
	e.PodName, e.Namespace, e.ContainerName = info.PodName, info.PodNamespace, info.ContainerName
	e.ImageRepository, e.ImageTag = info.ImageRepository, info.ImageTag
	if e.PodUID == "" {
		e.PodUID = info.PodUID
	}
}

func errnoName(n int32) string {
	if name := unix.ErrnoName(unix.Errno(n)); name != "" {
		return name
	}
	return "E" + strconv.Itoa(int(n))
}

// resolve makes a file record's path absolute: relative to the working directory
// the kernel read with it, or to the directory descriptor it names (looked up in
// /proc, which is only right while the process still has it open). A path that
// cannot be resolved is kept as the process gave it.
func (a *Agent) resolve(r *ebpf.Record, path string, dirfd int32) string {
	if path == "" {
		// AT_EMPTY_PATH: the call acted on the descriptor itself.
		if dirfd != ebpf.AtCWD {
			return a.readLink(r.PID, filepath.Join("fd", strconv.Itoa(int(dirfd))))
		}
		return ""
	}
	if strings.HasPrefix(path, "/") {
		return filepath.Clean(path)
	}
	dir := r.FileCwd
	if dirfd != ebpf.AtCWD {
		dir = a.readLink(r.PID, filepath.Join("fd", strconv.Itoa(int(dirfd))))
	} else if dir == "" {
		dir = a.readLink(r.PID, "cwd")
	}
	if dir == "" || !strings.HasPrefix(dir, "/") {
		return path
	}
	return filepath.Join(dir, path)
}

func (a *Agent) excluded(path string) bool {
	for _, p := range a.cfg.ExcludePaths {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func loginUID(v uint32) int64 {
	if v == ^uint32(0) {
		return -1
	}
	return int64(v)
}

// execID names one execution, unique per node boot: boot, pid and start time in
// clock ticks — the precision /proc gives, so that processes seeded from /proc and
// those the kernel reports get the same ids.
func (a *Agent) execID(pid uint32, startNS uint64) string {
	return a.bootID + ":" + strconv.FormatUint(uint64(pid), 10) + ":" + strconv.FormatUint(ticks(startNS), 10)
}

// ticks converts nanoseconds since boot to USER_HZ clock ticks (100 per second).
func ticks(ns uint64) uint64 { return ns / 10_000_000 }

func (a *Agent) readComm(pid uint32) string {
	b, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, strconv.Itoa(int(pid)), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (a *Agent) readLink(pid uint32, name string) string {
	s, _ := os.Readlink(filepath.Join(a.cfg.ProcRoot, strconv.Itoa(int(pid)), name))
	return s
}

// readEnv returns the value of one variable in a process' environment, "" when
// it is not set or the process is gone.
func (a *Agent) readEnv(pid uint32, name string) string {
	data, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, strconv.FormatUint(uint64(pid), 10), "environ"))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func (a *Agent) readCmdline(pid uint32) []string {
	b, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, strconv.Itoa(int(pid)), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// seedFromProc remembers the processes running before the agent started, so
// that their connections are described like any other's.
func (a *Agent) seedFromProc() {
	entries, err := os.ReadDir(a.cfg.ProcRoot)
	if err != nil {
		return
	}
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		start, ppid, ok := a.readStat(uint32(pid))
		if !ok {
			continue
		}
		pstart, _, _ := a.readStat(ppid)
		p := &process{startNS: start, execID: a.execID(uint32(pid), start), pexecID: a.execID(ppid, pstart),
			name: a.readComm(uint32(pid)), exePath: a.readLink(uint32(pid), "exe"), argv: a.readCmdline(uint32(pid)),
			ppid: ppid, pname: a.readComm(ppid), cwd: a.readLink(uint32(pid), "cwd")}
		if data, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, d.Name(), "cgroup")); err == nil {
			if c, ok := cgroup.ParseProcCgroup(string(data)); ok {
				p.container = c.ID
			}
		}
		a.procs[uint32(pid)] = p
	}
	// A process that was running before the agent belongs to the session of its
	// highest ancestor in the same container.
	for _, p := range a.procs {
		top := p
		for i := 0; top.container != "" && i < 64; i++ { // bounded: pids can form no cycle, but be sure
			parent := a.procs[top.ppid]
			if parent == nil || parent.container != top.container || parent.runtime() {
				break
			}
			top = parent
		}
		if p.container != "" && !p.runtime() {
			p.session = top.execID
		}
	}
}

// readStat returns a process' start time in nanoseconds since boot (as the kernel's
// task->start_time) and its parent pid, from /proc/PID/stat.
func (a *Agent) readStat(pid uint32) (startNS uint64, ppid uint32, ok bool) {
	b, err := os.ReadFile(filepath.Join(a.cfg.ProcRoot, strconv.Itoa(int(pid)), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain spaces: fields follow
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, false
	}
	p, _ := strconv.ParseUint(f[1], 10, 32)
	ticks, _ := strconv.ParseUint(f[19], 10, 64)
	// /proc reports the start in clock ticks (USER_HZ, 100 on Linux).
	return ticks * 10_000_000, uint32(p), true
}
