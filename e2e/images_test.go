//go:build e2e

package e2e

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
	"runtime"
	"sort"
	"strings"
	"time"
)

// The test's images. There is no registry: both are written as one OCI
// image-layout archive and imported into containerd, and pods use them with
// imagePullPolicy Never. The names are qualified so that neither the kubelet nor
// containerd rewrites them (docker.io/library/...).
const (
	busyboxImage = "e2e.kubetrail.test/busybox:1"
	pauseImage   = "e2e.kubetrail.test/pause:1"
)

// file is one entry of an image layer.
type file struct {
	name string // path without leading slash
	mode int64
	data []byte // for a regular file
	link string // for a symbolic link
	dir  bool
}

// staticBusybox finds a statically linked busybox (Debian's busybox-static): a
// dynamically linked one would not run in an image that has no libc.
func staticBusybox() (string, error) {
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

// busyboxFiles is a root file system of busybox and every applet as a symbolic
// link to it, as in Alpine: /bin/wget, /bin/tar, ... are busybox under another
// name. root has a home (with a shell history) and passwd names it.
func busyboxFiles(busybox string) ([]file, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	files := []file{
		{name: "bin", dir: true, mode: 0o755},
		{name: "etc", dir: true, mode: 0o755},
		{name: "root", dir: true, mode: 0o700},
		{name: "tmp", dir: true, mode: 0o1777},
		{name: "proc", dir: true, mode: 0o555},
		{name: "sys", dir: true, mode: 0o555},
		{name: "dev", dir: true, mode: 0o755},
		{name: "var", dir: true, mode: 0o755},
		{name: "bin/busybox", data: bin, mode: 0o755},
		{name: "etc/passwd", data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), mode: 0o644},
		{name: "etc/group", data: []byte("root:x:0:\nnobody:x:65534:\n"), mode: 0o644},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, file{name: "bin/" + applet, link: "busybox", mode: 0o777})
	}
	return files, nil
}

// layer is an uncompressed tar of files.
func layer(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the layer's digest stable from run to run.
	mtime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}

// ociArchive collects the blobs and index of an OCI image layout.
type ociArchive struct {
	blobs     map[string][]byte // "sha256:hex" -> content
	manifests []map[string]any
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

func (a *ociArchive) blob(mediaType string, data []byte) descriptor {
	sum := sha256.Sum256(data)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: len(data)}
	a.blobs[d.Digest] = data
	return d
}

// addImage adds a one-layer image named name whose process is argv.
func (a *ociArchive) addImage(name string, files []file, argv []string) error {
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
			"org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:],
		},
	})
	return nil
}

// write writes the layout as a tar archive, the form `ctr images import` reads.
func (a *ociArchive) write(path string) error {
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     a.manifests,
	})
	if err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	entries := []file{
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`), mode: 0o644},
		{name: "index.json", data: index, mode: 0o644},
		{name: "blobs", dir: true, mode: 0o755},
		{name: "blobs/sha256", dir: true, mode: 0o755},
	}
	digests := make([]string, 0, len(a.blobs))
	for d := range a.blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		entries = append(entries, file{name: "blobs/sha256/" + strings.TrimPrefix(d, "sha256:"), data: a.blobs[d], mode: 0o644})
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

// writeImages writes the busybox and pause images into one archive at path.
func writeImages(path, busybox, pause string) error {
	a := &ociArchive{blobs: map[string][]byte{}}
	bb, err := busyboxFiles(busybox)
	if err != nil {
		return err
	}
	if err := a.addImage(busyboxImage, bb, []string{"sh"}); err != nil {
		return err
	}
	pauseBin, err := os.ReadFile(pause)
	if err != nil {
		return fmt.Errorf("read the pause program: %w", err)
	}
	if err := a.addImage(pauseImage, []file{{name: "pause", data: pauseBin, mode: 0o755}}, []string{"/pause"}); err != nil {
		return err
	}
	return a.write(path)
}
