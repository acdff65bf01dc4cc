package cgroup

import (
	"bufio"
	"container/list"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Resolver maps a cgroup v2 id to the container of that cgroup.
//
// The id bpf_get_current_cgroup_id returns is the kernfs node id of the process's
// v2 cgroup, which on 64-bit kernels is also the inode number of the cgroup's
// directory. So the Resolver walks the v2 tree, stats each directory and
// remembers what it found. (open_by_handle_at can go from id to path directly,
// but needs CAP_DAC_READ_SEARCH and builds on kernfs's file handle layout; a walk
// needs neither.)
//
// Entries outlive their directories: a container's last events (its exit, a
// connection closing) are read after the runtime removed its cgroup, and must
// still be attributed. The cache is bounded by least recent use instead.
//
// A Resolver is safe for concurrent use.
type Resolver struct {
	root       string
	maxEntries int           // bound of the cache; the least recently used entry goes first
	minRescan  time.Duration // a walk costs a readdir per cgroup: at most one per this interval

	mu       sync.Mutex
	entries  map[uint64]*list.Element // of *entry
	lru      *list.List               // most recently used first
	missing  map[uint64]struct{}      // ids a walk did not find
	lastWalk time.Time
	walks    int // how many walks Lookup did; for tests
}

type entry struct {
	id          uint64
	c           Container
	isContainer bool // host cgroups are remembered too, so their events cost no walk
}

// NewResolver returns a Resolver for the cgroup v2 tree mounted at root (see V2Root).
// It walks the tree on the first lookup, not here.
func NewResolver(root string) *Resolver {
	return &Resolver{
		root:       filepath.Clean(root),
		maxEntries: 65536,
		minRescan:  100 * time.Millisecond,
		entries:    map[uint64]*list.Element{},
		lru:        list.New(),
		missing:    map[uint64]struct{}{},
	}
}

// Lookup reports the container of the cgroup with the given id, false for a host
// cgroup or an unknown id.
//
// A miss walks the tree, unless a walk already missed this id. That is final:
// cgroup ids are never reused, and a cgroup exists before any event from inside
// it, so an id a walk started after the event did not find belonged to a cgroup
// already gone. Register containers with Add when they start to catch even
// those. Walks are at least 100 ms apart: a miss sooner waits for its turn
// rather than report a new container's first process as the host's (pods
// starting together each bring new cgroups within milliseconds).
func (r *Resolver) Lookup(id uint64) (Container, bool) {
	r.mu.Lock()
	if e, ok := r.get(id); ok {
		r.mu.Unlock()
		return e.c, e.isContainer
	}
	if _, missed := r.missing[id]; missed {
		r.mu.Unlock()
		return Container{}, false
	}
	if wait := r.minRescan - time.Since(r.lastWalk); wait > 0 {
		r.mu.Unlock()
		time.Sleep(wait)
		r.mu.Lock()
		if e, ok := r.get(id); ok { // a walk meanwhile found it
			r.mu.Unlock()
			return e.c, e.isContainer
		}
	}
	r.lastWalk = time.Now()
	r.walks++
	r.mu.Unlock()

	// Walk without the lock, so that lookups of known ids go on meanwhile.
	found, err := r.scan(r.root)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.put(found)
	if e, ok := r.get(id); ok {
		return e.c, e.isContainer
	}
	if err == nil { // a failed walk proves nothing
		if len(r.missing) >= r.maxEntries {
			clear(r.missing) // crude bound; the cost of forgetting is one walk per id
		}
		r.missing[id] = struct{}{}
	}
	return Container{}, false
}

// Add registers the cgroup at path and the cgroups below it without waiting for a
// miss, so a short-lived container is known even if it is gone before its events
// are looked up. path is either a cgroup path as in /proc/<pid>/cgroup
// ("/kubepods/...") or a directory under the Resolver's root.
func (r *Resolver) Add(path string) error {
	dir := filepath.Clean(path)
	if dir != r.root && !strings.HasPrefix(dir, r.root+"/") {
		dir = filepath.Join(r.root, dir)
	}
	found, err := r.scan(dir)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.put(found)
	return err
}

// scan stats every directory from dir down. A cgroup removed while we walk is
// skipped; only a failure at dir itself is an error.
func (r *Resolver) scan(dir string) ([]entry, error) {
	var found []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("cgroup: no inode numbers on this platform")
		}
		c, isContainer := ParsePath(strings.TrimPrefix(p, r.root))
		found = append(found, entry{id: st.Ino, c: c, isContainer: isContainer})
		return nil
	})
	return found, err
}

// get returns (a copy of, as put may change it once r.mu is released) the
// entry of id and marks it used. The caller holds r.mu.
func (r *Resolver) get(id uint64) (entry, bool) {
	el, ok := r.entries[id]
	if !ok {
		return entry{}, false
	}
	r.lru.MoveToFront(el)
	return *el.Value.(*entry), true
}

// put remembers entries, dropping the least recently used beyond the bound. A
// walk meeting a known cgroup again does not count as a use: otherwise every
// walk would refresh all live host cgroups. The caller holds r.mu.
func (r *Resolver) put(found []entry) {
	for _, e := range found {
		if el, ok := r.entries[e.id]; ok {
			*el.Value.(*entry) = e
			continue
		}
		r.entries[e.id] = r.lru.PushFront(&e)
		delete(r.missing, e.id)
		for r.lru.Len() > r.maxEntries {
			old := r.lru.Remove(r.lru.Back()).(*entry)
			delete(r.entries, old.id)
		}
	}
}

// V2Root returns where the cgroup v2 hierarchy is mounted, from
// /proc/self/mountinfo: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified
// on a hybrid one. A v1-only host has none, which is an error: bpf_get_current_cgroup_id
// reports v2 ids only.
func V2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return v2Root(f)
}

// v2Root reads mountinfo lines:
//
//	41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
//
// (id, parent, device, root in the filesystem, mount point, options, optional
// fields, "-", filesystem type, ...). Only a mount of the whole hierarchy (root
// "/") will do; the usual places win over other mounts, such as a bind mount a
// container runtime left behind.
func v2Root(mountinfo io.Reader) (string, error) {
	unescape := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	var first string
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" || fields[3] != "/" {
			continue
		}
		switch mnt := unescape.Replace(fields[4]); mnt {
		case "/sys/fs/cgroup", "/sys/fs/cgroup/unified":
			return mnt, nil
		default:
			if first == "" {
				first = mnt
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if first == "" {
		return "", errors.New("cgroup: no cgroup v2 hierarchy mounted")
	}
	return first, nil
}
