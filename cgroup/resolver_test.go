package cgroup

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// ino returns the inode number of dir, which the Resolver takes for the cgroup id.
func ino(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// mkdirs creates root/rel one level at a time and removes, on cleanup and in
// reverse order, the levels it created. Levels that already existed (a kubelet's
// kubepods) are left alone. The returned func removes them early; cleanup then
// has nothing left to do.
func mkdirs(t *testing.T, root, rel string) (leaf string, remove func()) {
	t.Helper()
	var created []string
	remove = func() {
		for len(created) > 0 {
			dir := created[len(created)-1]
			// A cgroup whose last process just died may be busy for a moment.
			err := os.Remove(dir)
			for deadline := time.Now().Add(5 * time.Second); errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				err = os.Remove(dir)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
				return
			}
			created = created[:len(created)-1]
		}
	}
	t.Cleanup(remove)
	leaf = root
	for _, part := range strings.Split(strings.Trim(rel, "/"), "/") {
		leaf = filepath.Join(leaf, part)
		switch err := os.Mkdir(leaf, 0o755); {
		case err == nil:
			created = append(created, leaf)
		case errors.Is(err, os.ErrExist):
		default:
			t.Fatal(err)
		}
	}
	return leaf, remove
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newContainer returns a fresh container id and pod UID, and the cgroupfs path of
// that container.
func newContainer(t *testing.T) (id, uid, rel string) {
	u := randomHex(t, 16)
	uid = u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
	id = randomHex(t, 32)
	return id, uid, "/kubepods/besteffort/pod" + uid + "/" + id
}

func TestResolverCache(t *testing.T) {
	root := t.TempDir() // inode numbers work the same on any file system
	id, uid, rel := newContainer(t)
	leaf, _ := mkdirs(t, root, rel)
	want := Container{ID: id, PodUID: uid, QoS: QoSBestEffort}

	r := NewResolver(root)
	if c, ok := r.Lookup(ino(t, leaf)); !ok || c != want {
		t.Fatalf("Lookup = %+v, %v; want %+v", c, ok, want)
	}
	if _, ok := r.Lookup(ino(t, filepath.Join(root, "kubepods"))); ok {
		t.Error("kubepods taken for a container")
	}
	if r.walks != 1 {
		t.Errorf("%d walks, want 1: the first walk saw the host cgroups too", r.walks)
	}

	// An unknown id walks once, then is known to be missing.
	r.minRescan = 0
	const unknown = 1 << 62
	r.Lookup(unknown)
	r.Lookup(unknown)
	if r.walks != 2 {
		t.Errorf("%d walks, want 2: a missed id must not walk again", r.walks)
	}

	// Rate limit: a new container right after a walk waits for the next walk
	// and is found by it, not taken for the host (pods start together).
	r.minRescan = 300 * time.Millisecond
	r.lastWalk = time.Now()
	id2, uid2, rel2 := newContainer(t)
	leaf2, _ := mkdirs(t, root, rel2)
	start := time.Now()
	if c, ok := r.Lookup(ino(t, leaf2)); !ok || c.ID != id2 || c.PodUID != uid2 || r.walks != 3 {
		t.Errorf("Lookup = %+v, %v after %d walks; want %s after 3", c, ok, r.walks, id2)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("walked after %s, before the rate limit allowed", waited)
	}

	// Add registers a container without waiting for a miss, by cgroup path or
	// directory, with its sub-cgroups.
	r.minRescan = time.Hour
	id3, _, rel3 := newContainer(t)
	leaf3, _ := mkdirs(t, root, rel3+"/init.scope")
	if err := r.Add(rel3); err != nil {
		t.Fatal(err)
	}
	if c, ok := r.Lookup(ino(t, leaf3)); !ok || c.ID != id3 {
		t.Errorf("Lookup of an added sub-cgroup = %+v, %v; want %s", c, ok, id3)
	}
	if err := r.Add(filepath.Dir(leaf3)); err != nil {
		t.Error(err)
	}
	if err := r.Add("/no/such/cgroup"); err == nil {
		t.Error("Add of a missing path: no error")
	}

	// The container is gone; its late events are still attributed. (Last: unlike
	// cgroupfs, a temporary file system reuses the inode numbers of removed
	// directories.)
	leafIno := ino(t, leaf)
	if err := os.Remove(leaf); err != nil {
		t.Fatal(err)
	}
	if c, ok := r.Lookup(leafIno); !ok || c != want {
		t.Errorf("after removal: Lookup = %+v, %v; want %+v", c, ok, want)
	}
}

func TestResolverBound(t *testing.T) {
	root := t.TempDir()
	r := NewResolver(root)
	r.maxEntries = 3
	var inos []uint64
	for i := range 5 {
		dir := filepath.Join(root, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := r.Add(dir); err != nil {
			t.Fatal(err)
		}
		inos = append(inos, ino(t, dir))
		if i == 1 {
			r.Lookup(inos[0]) // used: 1 is now the least recently used
		}
	}
	if len(r.entries) != 3 || r.lru.Len() != 3 {
		t.Fatalf("%d entries, %d in the list; want 3", len(r.entries), r.lru.Len())
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := r.entries[inos[i]]; ok != want {
			t.Errorf("entry %d kept: %v, want %v", i, ok, want)
		}
	}
}

// TestResolverReal runs on the host's cgroup v2 tree: a container cgroup made the
// kubelet's way, a process in it, the process's /proc/<pid>/cgroup, the cgroup id
// the kernel reports for it, and the cgroup outliving its directory in the cache.
func TestResolverReal(t *testing.T) {
	root, err := V2Root()
	if err != nil {
		skipOrFail(t, "no cgroup v2: %v", err)
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root")
	}
	id, uid, rel := newContainer(t)
	want := Container{ID: id, PodUID: uid, QoS: QoSBestEffort}
	leaf, remove := mkdirs(t, root, rel)
	cgid := ino(t, leaf)

	// The inode number is the id bpf_get_current_cgroup_id reports: both are the
	// kernfs node id, which the cgroup's file handle carries too.
	if h, err := fileHandleID(leaf); err != nil {
		t.Logf("no file handle to compare with: %v", err)
	} else if h != cgid {
		t.Errorf("inode %d, but the kernel's cgroup id is %d", cgid, h)
	} else {
		t.Logf("cgroup id %d: inode number and file handle agree", cgid)
	}

	r := NewResolver(root)
	if c, ok := r.Lookup(cgid); !ok || c != want {
		t.Fatalf("Lookup = %+v, %v; want %+v", c, ok, want)
	}

	// A process in the cgroup, as the runtime would put it there.
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	stop := func() {
		if !reaped {
			child.Process.Kill()
			child.Wait()
			reaped = true
		}
	}
	t.Cleanup(stop) // registered after mkdirs: runs before the removal
	pid := strconv.Itoa(child.Process.Pid)
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(pid), 0); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("/proc/%s/cgroup:\n%s", pid, content)
	if c, ok := ParseProcCgroup(string(content)); !ok || c != want {
		t.Errorf("ParseProcCgroup = %+v, %v; want %+v", c, ok, want)
	}

	// The container dies; its id is still attributed, from the cache.
	stop()
	remove()
	if _, err := os.Stat(leaf); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cgroup still there: %v", err)
	}
	if c, ok := r.Lookup(cgid); !ok || c != want {
		t.Errorf("after removal: Lookup = %+v, %v; want %+v", c, ok, want)
	}
}

// skipOrFail skips a test whose environment is missing, except on CI, where the
// environment is meant to be there.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// fileHandleID returns the id in the file handle of a cgroup directory
// (name_to_handle_at), which for kernfs is the node id: the cgroup id.
func fileHandleID(path string) (uint64, error) {
	// The syscall package names this syscall on some architectures only.
	nr := map[string]uintptr{"amd64": 303, "arm64": 264}[runtime.GOARCH]
	if nr == 0 {
		return 0, errors.New("name_to_handle_at: syscall number unknown on " + runtime.GOARCH)
	}
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	// struct file_handle { u32 handle_bytes; int handle_type; u8 f_handle[]; }
	var h struct {
		bytes, typ uint32
		id         [8]byte
	}
	h.bytes = 8
	var mountID int32
	const atFDCWD = -100
	fd := atFDCWD
	_, _, errno := syscall.Syscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&h)), uintptr(unsafe.Pointer(&mountID)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	if h.bytes != 8 {
		return 0, fmt.Errorf("file handle of %d bytes", h.bytes)
	}
	return binary.NativeEndian.Uint64(h.id[:]), nil
}

// TestResolverConcurrent is for the race detector: lookups, walks and adds at once.
func TestResolverConcurrent(t *testing.T) {
	root := t.TempDir()
	_, _, rel := newContainer(t)
	leaf, _ := mkdirs(t, root, rel)
	id := ino(t, leaf)
	r := NewResolver(root)
	r.minRescan = 0
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				r.Lookup(id)
				r.Lookup(uint64(g*1000 + i + 1<<40)) // unknown: walks
				r.Add(rel)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if _, ok := r.Lookup(id); !ok {
		t.Error("container lost")
	}
}
