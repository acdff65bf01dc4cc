// Package ebpf is kubetrail's kernel sensor: eBPF programs (sensor.bpf.c, compiled
// by bpf2go into the committed sensor_x86_bpfel.*) that record process executions
// and exits and TCP connections opened or accepted, and the Go that loads them and
// reads their ring buffer.
//
// Hooks, and why these: only BTF tracepoints (tp_btf). They are stable kernel
// interfaces with typed arguments, need no tracefs, and are there on kernels
// built without kprobes or where fentry is refused (this project's test machines
// have neither). Exec and exit come from the scheduler's tracepoints; a TCP
// connect from the socket state tracepoint (its CLOSE -> SYN_SENT step runs in the
// connecting process, the handshake's end gives the outcome); a UDP exchange from
// the connect and sendto system calls (once per socket and peer); an accept from the
// system call exit tracepoint, following the returned descriptor to its socket;
// file changes from the system call entry (the path, read from the caller's
// memory) and exit (the result) tracepoints.
package ebpf

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Kind says what a record is.
type Kind uint32

const (
	KindExec    Kind = 1
	KindExit    Kind = 2
	KindConnect Kind = 3
	KindAccept  Kind = 4
	KindFile    Kind = 5
)

// FileOp says what a file record did.
type FileOp uint32

const (
	FileOpen   FileOp = 1 // opened for writing, created or truncated
	FileUnlink FileOp = 2
	FileRmdir  FileOp = 3
	FileRename FileOp = 4
	FileChmod  FileOp = 5
	FileChown  FileOp = 6
	FileMkdir  FileOp = 7
)

// String names the operation as the event's evt.type.
func (o FileOp) String() string {
	switch o {
	case FileOpen:
		return "open"
	case FileUnlink:
		return "unlink"
	case FileRmdir:
		return "rmdir"
	case FileRename:
		return "rename"
	case FileChmod:
		return "chmod"
	case FileChown:
		return "chown"
	case FileMkdir:
		return "mkdir"
	}
	return fmt.Sprintf("file-op(%d)", uint32(o))
}

// AtCWD is the directory descriptor meaning "the working directory".
const AtCWD = -100

func (k Kind) String() string {
	switch k {
	case KindExec:
		return "exec"
	case KindExit:
		return "exit"
	case KindConnect:
		return "connect"
	case KindAccept:
		return "accept"
	case KindFile:
		return "file"
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// Record is one observation of the kernel.
type Record struct {
	Kind     Kind
	Time     time.Time
	PID      uint32 // the process (thread group id)
	TID      uint32
	PPID     uint32
	UID      uint32
	GID      uint32
	LoginUID uint32 // 4294967295 when unset
	TTY      uint32
	CgroupID uint64
	// StartNS and ParentStartNS are the process' and its parent's start times in
	// nanoseconds since boot: with the pids, identities that pid reuse cannot fool.
	StartNS       uint64
	ParentStartNS uint64
	Comm          string

	// KindExec.
	Filename      string
	Argv          []string
	ArgvTruncated bool
	Cwd           string // as the process' mount namespace sees it
	CwdTruncated  bool

	// KindExit.
	ExitCode int32

	// KindConnect (Src is this host's end) and KindAccept (Dst is).
	Src, Dst netip.AddrPort
	Protocol uint16 // 6 for TCP, 17 for UDP
	// Errno is 0 when the connection was established or the file operation
	// succeeded, else the error.
	Errno int32

	// KindFile. Path is as the process passed it: relative to DirFD (AtCWD for
	// the working directory) unless it starts with a slash.
	FileOp    FileOp
	DirFD     int32
	OpenFlags uint32
	Path      string
	NewPath   string // for a rename, relative to NewDirFD unless absolute
	NewDirFD  int32
	// FileCwd is the working directory, for a Path relative to it.
	FileCwd string
}

// Sensor is the loaded and attached eBPF programs.
type Sensor struct {
	objs     sensorObjects
	links    []link.Link
	rd       *ringbuf.Reader
	bootTime time.Time
	bootAt   time.Time // when bootTime was last computed
	// stopped is set by Stop: Read then ends once the buffer is empty.
	stopped atomic.Bool
	// rec is reused by Read: an exec record is 5 KiB, and a fresh buffer for each
	// one cost more in garbage collection than the decoding itself.
	rec ringbuf.Record
	// lastCwdRaw and lastCwd are the last working directory decoded (see cwd).
	lastCwdRaw, lastCwd string
}

// Options tune the sensor.
type Options struct {
	// RingBufferBytes sizes the ring buffer records wait in for user space: a
	// power of two, at least a page; default 16 MiB.
	RingBufferBytes uint32
}

// Load loads the programs into the kernel and attaches them, with default
// options. It needs root, or CAP_BPF with CAP_PERFMON (and CAP_SYS_RESOURCE on
// kernels that still charge BPF memory to RLIMIT_MEMLOCK).
func Load() (*Sensor, error) { return LoadWith(Options{}) }

// LoadWith is Load with options.
func LoadWith(o Options) (*Sensor, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift the memlock limit for eBPF maps: %w", err)
	}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("read the eBPF programs: %w", err)
	}
	if o.RingBufferBytes != 0 {
		spec.Maps[sensorMapEvents].MaxEntries = o.RingBufferBytes
	}
	s := &Sensor{}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load eBPF programs: %+v", ve)
		}
		return nil, fmt.Errorf("load eBPF programs: %w", err)
	}
	attach := []struct {
		name string
		do   func() (link.Link, error)
	}{
		{"tp_btf/sched_process_exec", func() (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: s.objs.HandleExec})
		}},
		{"tp_btf/sched_process_exit", func() (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: s.objs.HandleExit})
		}},
		{"tp_btf/inet_sock_set_state", func() (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: s.objs.HandleSetState})
		}},
		{"tp_btf/sys_enter", func() (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: s.objs.HandleSysEnter})
		}},
		{"tp_btf/sys_exit", func() (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: s.objs.HandleSysExit})
		}},
	}
	for _, a := range attach {
		l, err := a.do()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("attach %s: %w", a.name, err)
		}
		s.links = append(s.links, l)
	}
	rd, err := ringbuf.NewReader(s.objs.Events)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open the ring buffer: %w", err)
	}
	s.rd = rd
	s.bootTime = bootTime()
	return s, nil
}

// bootTime is the wall-clock time of boot: kernel records carry time since boot
// (CLOCK_BOOTTIME, which keeps counting through suspend).
func bootTime() time.Time {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// ErrClosed is returned by Read after Close.
var ErrClosed = ringbuf.ErrClosed

// pollInterval bounds how long a record waits in the ring buffer: the kernel
// side wakes the reader only when the buffer fills up (see wakeup_flag).
const pollInterval = 50 * time.Millisecond

// Read blocks until the next record. It is not safe for concurrent use.
func (s *Sensor) Read() (Record, error) {
	for {
		// Records carry time since boot; the wall clock of boot moves when the
		// clock is stepped (NTP at start-up): recompute it now and then.
		if time.Since(s.bootAt) > 10*time.Second {
			s.bootTime, s.bootAt = bootTime(), time.Now()
		}
		stopped := s.stopped.Load()
		s.rd.SetDeadline(time.Now().Add(pollInterval))
		if err := s.rd.ReadInto(&s.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if stopped {
					return Record{}, ErrClosed // stopped, and everything read
				}
				continue
			}
			return Record{}, err
		}
		r, err := s.decode(s.rec.RawSample)
		if err != nil {
			continue // a record this version does not know: skip it, do not stop
		}
		return r, nil
	}
}

func (s *Sensor) decode(b []byte) (Record, error) {
	if len(b) < int(unsafe.Sizeof(sensorHeader{})) {
		return Record{}, errors.New("short record")
	}
	h := (*sensorHeader)(unsafe.Pointer(&b[0]))
	r := Record{
		Kind: Kind(h.Kind), Time: s.bootTime.Add(time.Duration(h.TimeNs)), PID: h.Pid, TID: h.Tid, PPID: h.Ppid,
		UID: h.Uid, GID: h.Gid, LoginUID: h.Loginuid, TTY: h.Tty, CgroupID: h.CgroupId,
		StartNS: h.StartNs, ParentStartNS: h.PstartNs, Comm: cString(h.Comm[:]),
	}
	switch r.Kind {
	case KindExec:
		if len(b) < int(unsafe.Sizeof(sensorExecRecord{})) {
			return r, errors.New("short exec record")
		}
		e := (*sensorExecRecord)(unsafe.Pointer(&b[0]))
		r.Filename = cString(e.Filename[:])
		n := min(int(e.ArgvLen), len(e.Argv))
		r.Argv = splitArgv(e.Argv[:n])
		r.ArgvTruncated = e.Flags&1 != 0
		r.Cwd = s.cwd(e.Cwd[:min(int(e.CwdLen), len(e.Cwd))])
		r.CwdTruncated = e.Flags&2 != 0
	case KindExit:
		if len(b) < int(unsafe.Sizeof(sensorExitRecord{})) {
			return r, errors.New("short exit record")
		}
		r.ExitCode = (*sensorExitRecord)(unsafe.Pointer(&b[0])).ExitCode
	case KindConnect, KindAccept:
		if len(b) < int(unsafe.Sizeof(sensorConnRecord{})) {
			return r, errors.New("short connection record")
		}
		c := (*sensorConnRecord)(unsafe.Pointer(&b[0]))
		r.Src = netip.AddrPortFrom(addr(c.Family, c.Saddr), c.Sport)
		r.Dst = netip.AddrPortFrom(addr(c.Family, c.Daddr), c.Dport)
		r.Errno = c.Result
		r.Protocol = c.Protocol
	case KindFile:
		if len(b) < int(unsafe.Sizeof(sensorFileRecord{})) {
			return r, errors.New("short file record")
		}
		f := (*sensorFileRecord)(unsafe.Pointer(&b[0]))
		r.FileOp, r.DirFD, r.NewDirFD, r.OpenFlags, r.Errno = FileOp(f.Op), f.Dirfd, f.Dirfd2, f.Flags, f.Result
		r.Path, r.NewPath = cString(f.Path[:]), cString(f.Path2[:])
		if f.CwdLen > 0 {
			r.FileCwd = s.cwd(f.Cwd[:min(int(f.CwdLen), len(f.Cwd))])
		}
	default:
		return r, fmt.Errorf("unknown record kind %d", r.Kind)
	}
	return r, nil
}

// SetExcludes sets the path prefixes whose changes are not recorded (at most 8,
// each under 32 bytes), such as /proc, /sys and /dev: filtering them in the kernel
// keeps the stream bounded.
func (s *Sensor) SetExcludes(prefixes []string) error {
	if len(prefixes) > 8 {
		return fmt.Errorf("%d excluded prefixes; at most 8 are supported", len(prefixes))
	}
	for i := uint32(0); i < 8; i++ {
		var x sensorExclude
		if int(i) < len(prefixes) {
			p := strings.TrimSuffix(prefixes[i], "/")
			if !strings.HasPrefix(p, "/") || len(p) >= len(x.Prefix) {
				return fmt.Errorf("excluded prefix %q must be an absolute path under %d bytes", prefixes[i], len(x.Prefix))
			}
			x.Len = uint32(len(p))
			for j := 0; j < len(p); j++ {
				x.Prefix[j] = int8(p[j])
			}
		}
		if err := s.objs.Excludes.Update(i, &x, 0); err != nil {
			return fmt.Errorf("set excluded prefixes: %w", err)
		}
	}
	return nil
}

func addr(family uint16, b [16]uint8) netip.Addr {
	if family == unix.AF_INET {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b).Unmap()
}

func cString(b []int8) string {
	bs := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
	if i := strings.IndexByte(string(bs), 0); i >= 0 {
		bs = bs[:i]
	}
	return string(bs)
}

// cwd makes a path of the kernel's names, which come innermost first. A storm
// of records shares one working directory, so the last answer is kept.
func (s *Sensor) cwd(b []int8) string {
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
	if s.lastCwd != "" && string(raw) == s.lastCwdRaw {
		return s.lastCwd
	}
	s.lastCwdRaw, s.lastCwd = string(raw), joinCwd(raw)
	return s.lastCwd
}

// joinCwd reverses the NUL-separated names into a slash-separated path.
func joinCwd(raw []byte) string {
	var sb strings.Builder
	sb.Grow(len(raw) + 1)
	for end := len(raw); end > 0; {
		if raw[end-1] == 0 { // the terminator, or an empty name
			end--
			continue
		}
		start := bytes.LastIndexByte(raw[:end], 0) + 1
		sb.WriteByte('/')
		sb.Write(raw[start:end])
		end = start
	}
	if sb.Len() == 0 {
		return "/"
	}
	return sb.String()
}

// splitArgv splits the kernel's NUL-separated argument area.
func splitArgv(b []int8) []string {
	s := cStringAll(b)
	s = strings.TrimSuffix(s, "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

func cStringAll(b []int8) string {
	return string(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), len(b)))
}

// Lost returns how many records of each kind did not fit in the ring buffer since
// the sensor was loaded, summed over CPUs, and per CPU.
func (s *Sensor) Lost() (map[Kind]uint64, map[Kind][]uint64, error) {
	total := map[Kind]uint64{}
	perCPU := map[Kind][]uint64{}
	for _, k := range []Kind{KindExec, KindExit, KindConnect, KindAccept, KindFile} {
		var vals []uint64
		if err := s.objs.Lost.Lookup(uint32(k), &vals); err != nil {
			return nil, nil, fmt.Errorf("read lost counters: %w", err)
		}
		perCPU[k] = vals
		for _, v := range vals {
			total[k] += v
		}
	}
	return total, perCPU, nil
}

// Stop detaches the programs, so that nothing new is recorded, and lets Read
// return what is still in the ring buffer before it reports ErrClosed: an agent
// that stops loses nothing it had already seen. Close still releases the rest.
func (s *Sensor) Stop() {
	for _, l := range s.links {
		l.Close()
	}
	s.links = nil
	s.stopped.Store(true)
}

// Close detaches the programs and releases the ring buffer; a blocked Read returns
// ErrClosed.
func (s *Sensor) Close() error {
	var errs []error
	if s.rd != nil {
		errs = append(errs, s.rd.Close())
	}
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, s.objs.Close())
	return errors.Join(errs...)
}
