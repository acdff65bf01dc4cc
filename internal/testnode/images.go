// Package testnode gives tests what they need to run containers on this
// machine without a registry: a static busybox and a pause program as OCI
// image archives that containerd imports, and the host clean-up (mounts,
// cgroups) after a runtime or a kubelet. The CRI client's tests and the
// real-cluster end-to-end test share it.
package testnode

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// File is one entry of an image layer.
type File struct {
	Name string // path without leading slash
	Mode int64
	Data []byte // for a regular file
	Link string // for a symbolic link
	Dir  bool
}

// StaticBusybox finds a statically linked busybox (Debian's busybox-static): a
// dynamically linked one would not run in an image that has no libc.
func StaticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("no statically linked busybox in /bin or /usr/bin (apt-get install busybox-static)")
}

// BusyboxFiles is a root file system of busybox and every applet as a symbolic
// link to it, as in Alpine: /bin/wget, /bin/tar, ... are busybox under another
// name. root has a home (with a shell history) and passwd names it.
func BusyboxFiles(busybox string) ([]File, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	files := []File{
		{Name: "bin", Dir: true, Mode: 0o755},
		{Name: "etc", Dir: true, Mode: 0o755},
		{Name: "root", Dir: true, Mode: 0o700},
		{Name: "tmp", Dir: true, Mode: 0o1777},
		{Name: "proc", Dir: true, Mode: 0o555},
		{Name: "sys", Dir: true, Mode: 0o555},
		{Name: "dev", Dir: true, Mode: 0o755},
		{Name: "var", Dir: true, Mode: 0o755},
		{Name: "bin/busybox", Data: bin, Mode: 0o755},
		{Name: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), Mode: 0o644},
		{Name: "etc/group", Data: []byte("root:x:0:\nnobody:x:65534:\n"), Mode: 0o644},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, File{Name: "bin/" + applet, Link: "busybox", Mode: 0o777})
	}
	return files, nil
}

// layer is an uncompressed tar of files.
func layer(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the layer's digest stable from run to run.
	mtime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, f.Name+"/"
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", f.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}

// Archive collects the blobs and index of an OCI image layout.
type Archive struct {
	blobs     map[string][]byte // "sha256:hex" -> content
	manifests []map[string]any
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

func (a *Archive) blob(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: len(data)}
	a.blobs[d.Digest] = data
	return d
}

// AddImage adds a one-layer image named name whose process is argv.
func (a *Archive) AddImage(name string, files []File, argv []string) error {
	l, err := layer(files)
	if err != nil {
		return err
	}
	layerDesc := a.blob("application/vnd.oci.image.layer.v1.tar", l)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": argv,
		},
		// An uncompressed layer's diff ID is its digest.
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	if err != nil {
		return fmt.Errorf("image config of %s: %w", name, err)
	}
	configDesc := a.blob("application/vnd.oci.image.config.v1+json", config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return fmt.Errorf("image manifest of %s: %w", name, err)
	}
	m := a.blob("application/vnd.oci.image.manifest.v1+json", manifest)
	a.manifests = append(a.manifests, map[string]any{
		"mediaType": m.MediaType, "digest": m.Digest, "size": m.Size,
		"platform": map[string]string{"architecture": runtime.GOARCH, "os": "linux"},
		// containerd's import takes the whole name from the first annotation.
		"annotations": map[string]string{
			"io.containerd.image.name":          name,
			"org.opencontainers.image.ref.Name": name[strings.LastIndex(name, ":")+1:],
		},
	})
	return nil
}

// Write writes the layout as a tar archive, the form `ctr images import` reads.
func (a *Archive) Write(path string) error {
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     a.manifests,
	})
	if err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	entries := []File{
		{Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`), Mode: 0o644},
		{Name: "index.json", Data: index, Mode: 0o644},
		{Name: "blobs", Dir: true, Mode: 0o755},
		{Name: "blobs/sha256", Dir: true, Mode: 0o755},
	}
	digests := make([]string, 0, len(a.blobs))
	for d := range a.blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		entries = append(entries, File{Name: "blobs/sha256/" + strings.TrimPrefix(d, "sha256:"), Data: a.blobs[d], Mode: 0o644})
	}
	data, err := layer(entries)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write the image archive: %w", err)
	}
	return nil
}

// BuildPause builds the pause program (./pause beside this package) static
// into dir and returns its path.
func BuildPause(dir string) (string, error) {
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	out := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./internal/testnode/pause")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the pause program: %w\n%s", err, b)
	}
	return out, nil
}

// WriteImages writes one OCI image-layout archive at path holding a busybox
// image (every applet a link to it, sh its command) named busyboxName and a
// pause image (/pause) named pauseName.
func WriteImages(path, busyboxName, pauseName, busybox, pause string) error {
	a := &Archive{blobs: map[string][]byte{}}
	bb, err := BusyboxFiles(busybox)
	if err != nil {
		return err
	}
	if err := a.AddImage(busyboxName, bb, []string{"sh"}); err != nil {
		return err
	}
	pauseBin, err := os.ReadFile(pause)
	if err != nil {
		return fmt.Errorf("read the pause program: %w", err)
	}
	if err := a.AddImage(pauseName, []File{{Name: "pause", Data: pauseBin, Mode: 0o755}}, []string{"/pause"}); err != nil {
		return err
	}
	return a.Write(path)
}
