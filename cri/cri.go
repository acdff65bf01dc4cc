// Package cri names containers: it asks the node's container runtime (containerd,
// CRI-O, anything that speaks the Kubernetes Container Runtime Interface) which pod
// a container ID belongs to, and caches the answer.
//
// The agent learns a container ID from a process' cgroup; only the runtime knows
// the pod name, namespace, container name and image behind it. Answers are kept
// after the container is gone (in a bounded LRU) because events are often handled
// after the process, and sometimes the whole pod, has already exited.
package cri

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Info is what the runtime says about a container and its pod.
type Info struct {
	ContainerID   string
	ContainerName string
	PodName       string
	PodNamespace  string
	PodUID        string
	// Image is the image as the pod spec names it (repository:tag or
	// repository@digest) when the runtime still knows that, else the first tag
	// or digest reference of the image, else the runtime's image reference.
	Image string
	// ImageRepository and ImageTag split Image; for a digest reference the tag
	// is the digest ("sha256:..."), for name:tag@digest it is "tag@sha256:...".
	ImageRepository string
	ImageTag        string
	// Labels are the pod's labels, without the io.kubernetes.pod.* labels the
	// kubelet adds for itself.
	Labels map[string]string
}

// Defaults; see the options.
const (
	DefaultCacheSize = 65536
	// DefaultTimeout bounds one lookup on a cache miss: the agent must not stall
	// on a runtime that is slow or down.
	DefaultTimeout = time.Second
	// DefaultRefreshTimeout bounds Refresh, whose lists grow with the node.
	DefaultRefreshTimeout = 10 * time.Second
	// notFoundTTL is how long an ID the runtime does not know stays unknown
	// without asking again. Processes of containers the CRI does not manage
	// (docker run, ctr in another namespace) would otherwise cost a call per event.
	notFoundTTL = 10 * time.Second
	// downFor is how long misses fail at once after the runtime failed to answer,
	// so that a dead runtime costs one timeout, not one per event.
	downFor = 2 * time.Second
)

// ErrUnavailable is returned (wrapped) by Lookup while the runtime is not answering.
var ErrUnavailable = errors.New("container runtime unavailable")

// Option changes a Client's defaults.
type Option func(*Client)

// WithCacheSize sets how many containers are remembered (LRU).
func WithCacheSize(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.size = n
		}
	}
}

// WithTimeout sets the time one cache miss may take.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// Client looks containers up over a CRI socket. It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient
	size    int
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *entry, most recently used first
	byID  map[string]*list.Element
	pods  map[string]pod    // by sandbox ID
	names map[string]string // image ID -> name, for runtimes that report IDs
	down  time.Time         // misses fail fast until then
}

// entry is a cached answer; a negative one (found false) expires.
type entry struct {
	id      string
	info    Info
	found   bool
	expires time.Time
}

// pod is the part of Info that comes from the sandbox.
type pod struct {
	name, namespace, uid string
	labels               map[string]string
}

// Dial prepares a client for the CRI endpoint, e.g.
// "unix:///run/containerd/containerd.sock" or "/run/crio/crio.sock". It does not
// wait for the runtime: the agent must start even while the runtime is down, and
// the connection is made (and remade) in the background.
func Dial(ctx context.Context, endpoint string, opts ...Option) (*Client, error) {
	target, err := target(endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A restarted runtime should be found again within seconds, not after
		// gRPC's default backoff of up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: time.Second,
		}),
		// Lists of a busy node exceed gRPC's 4 MiB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("cri: dial %s: %w", endpoint, err)
	}
	c := &Client{
		conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn),
		size: DefaultCacheSize, timeout: DefaultTimeout, now: time.Now,
		lru: list.New(), byID: map[string]*list.Element{}, pods: map[string]pod{}, names: map[string]string{},
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// target turns a kubelet-style endpoint into a gRPC target.
func target(endpoint string) (string, error) {
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		if len(endpoint) == len("unix://") {
			return "", fmt.Errorf("cri: empty socket path in %q", endpoint)
		}
		return endpoint, nil
	case strings.HasPrefix(endpoint, "/"):
		return "unix://" + endpoint, nil
	default:
		return "", fmt.Errorf("cri: endpoint %q: want unix:///path or /path", endpoint)
	}
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Lookup names a container. ok is false when the runtime does not know the ID.
// Cached answers are returned without asking the runtime, including for
// containers that have since been removed. On a miss the runtime is asked for at
// most the client's timeout; while it is down, misses fail at once with an error
// wrapping ErrUnavailable.
func (c *Client) Lookup(ctx context.Context, containerID string) (Info, bool, error) {
	id := trimScheme(containerID)
	if id == "" {
		return Info{}, false, nil
	}
	c.mu.Lock()
	if e, hit := c.get(id); hit {
		c.mu.Unlock()
		return e.info, e.found, nil
	}
	if until := c.down; c.now().Before(until) {
		c.mu.Unlock()
		return Info{}, false, fmt.Errorf("cri: lookup %s: %w (retrying after %s)", short(id), ErrUnavailable, until.Format(time.TimeOnly))
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	info, found, err := c.fetch(ctx, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if unavailable(err) {
			c.down = c.now().Add(downFor)
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return Info{}, false, fmt.Errorf("cri: lookup %s: %w", short(id), err)
	}
	c.put(entry{id: id, info: info, found: found, expires: c.expiry(found)})
	return info, found, nil
}

// fetch asks the runtime about one container: the container (filtered list, which
// unlike ContainerStatus gives the sandbox ID), its sandbox's status, and the
// image's name if the runtime only gave an ID. Sandboxes and image names are
// cached, so a pod's second container costs one call.
func (c *Client) fetch(ctx context.Context, id string) (Info, bool, error) {
	resp, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: id}})
	if err != nil {
		return Info{}, false, err
	}
	var ctr *runtimeapi.Container
	for _, x := range resp.GetContainers() {
		// The filter may match by prefix; only the full ID is an answer.
		if x.GetId() == id {
			ctr = x
		}
	}
	if ctr == nil {
		return Info{}, false, nil
	}

	c.mu.Lock()
	p, havePod := c.pods[ctr.GetPodSandboxId()]
	c.mu.Unlock()
	if !havePod {
		st, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: ctr.GetPodSandboxId()})
		switch {
		case err == nil:
			p = podOf(st.GetStatus().GetMetadata(), st.GetStatus().GetLabels())
			c.mu.Lock()
			c.pods[ctr.GetPodSandboxId()] = p
			c.mu.Unlock()
		case status.Code(err) == codes.NotFound:
			// The sandbox went first; the container's kubelet labels still say
			// which pod it was (minus the pod's labels).
		default:
			return Info{}, false, err
		}
	}

	image := imageName(ctr.GetImage())
	if image == "" {
		image, err = c.imageByID(ctx, ctr.GetImage().GetImage(), ctr.GetImageRef())
		if err != nil {
			return Info{}, false, err
		}
	}
	return c.info(ctr, p, image), true, nil
}

// imageByID names an image the runtime reported by ID.
func (c *Client) imageByID(ctx context.Context, ids ...string) (string, error) {
	c.mu.Lock()
	for _, id := range ids {
		if n, ok := c.names[id]; ok {
			c.mu.Unlock()
			return n, nil
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		if id == "" {
			continue
		}
		st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}})
		if err != nil {
			if status.Code(err) == codes.NotFound {
				continue
			}
			return "", err
		}
		if st.GetImage() == nil {
			continue // the CRI's way of saying "no such image"
		}
		n := nameOf(st.GetImage())
		c.mu.Lock()
		c.names[id] = n
		c.mu.Unlock()
		return n, nil
	}
	// The image is gone; its reference is the best name left.
	for _, id := range ids {
		if id != "" {
			return id, nil
		}
	}
	return "", nil
}

// Refresh lists the runtime's sandboxes, images and containers and caches them
// all, so that lookups of running containers hit. Containers no longer listed
// stay cached until the LRU evicts them.
func (c *Client) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultRefreshTimeout)
	defer cancel()
	sbs, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return c.refreshFailed("list pod sandboxes", err)
	}
	imgs, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return c.refreshFailed("list images", err)
	}
	ctrs, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return c.refreshFailed("list containers", err)
	}

	pods := make(map[string]pod, len(sbs.GetItems()))
	for _, sb := range sbs.GetItems() {
		pods[sb.GetId()] = podOf(sb.GetMetadata(), sb.GetLabels())
	}
	names := make(map[string]string, len(imgs.GetImages()))
	for _, im := range imgs.GetImages() {
		n := nameOf(im)
		names[im.GetId()] = n
		// Runtimes report a container's image as the ID or as a digest
		// reference; either should find the name.
		for _, d := range im.GetRepoDigests() {
			names[d] = n
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// Replacing (not merging) bounds both maps by what the node holds now;
	// cached Infos already carry what they need of a removed pod or image.
	c.pods, c.names = pods, names
	c.down = time.Time{}
	for _, ctr := range ctrs.GetContainers() {
		image := imageName(ctr.GetImage())
		if image == "" {
			image = names[ctr.GetImage().GetImage()]
		}
		if image == "" {
			image = names[ctr.GetImageRef()]
		}
		if image == "" {
			image = firstNonEmpty(ctr.GetImageRef(), ctr.GetImage().GetImage())
		}
		info := c.info(ctr, pods[ctr.GetPodSandboxId()], image)
		c.put(entry{id: info.ContainerID, info: info, found: true})
	}
	return nil
}

func (c *Client) refreshFailed(what string, err error) error {
	if unavailable(err) {
		c.mu.Lock()
		c.down = c.now().Add(downFor)
		c.mu.Unlock()
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("cri: refresh: %s: %w", what, err)
}

// info assembles an Info; the pod may be zero when its sandbox is gone, and then
// the kubelet's labels on the container name the pod.
func (c *Client) info(ctr *runtimeapi.Container, p pod, image string) Info {
	l := ctr.GetLabels()
	repo, tag := SplitImage(image)
	return Info{
		ContainerID:     ctr.GetId(),
		ContainerName:   firstNonEmpty(ctr.GetMetadata().GetName(), l[labelContainerName]),
		PodName:         firstNonEmpty(p.name, l[labelPodName]),
		PodNamespace:    firstNonEmpty(p.namespace, l[labelPodNamespace]),
		PodUID:          firstNonEmpty(p.uid, l[labelPodUID]),
		Image:           image,
		ImageRepository: repo,
		ImageTag:        tag,
		Labels:          p.labels,
	}
}

// The labels the kubelet puts on sandboxes and containers.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

func podOf(md *runtimeapi.PodSandboxMetadata, labels map[string]string) pod {
	p := pod{
		name:      firstNonEmpty(md.GetName(), labels[labelPodName]),
		namespace: firstNonEmpty(md.GetNamespace(), labels[labelPodNamespace]),
		uid:       firstNonEmpty(md.GetUid(), labels[labelPodUID]),
	}
	for k, v := range labels {
		if k == labelPodName || k == labelPodNamespace || k == labelPodUID {
			continue
		}
		if p.labels == nil {
			p.labels = make(map[string]string, len(labels))
		}
		p.labels[k] = v
	}
	return p
}

// imageName is the image's name from a container's image spec, or "" when the
// spec holds only an image ID (as kubelets since 1.27ish pass to containerd).
func imageName(spec *runtimeapi.ImageSpec) string {
	if n := spec.GetUserSpecifiedImage(); n != "" {
		return n
	}
	if n := spec.GetImage(); n != "" && !isImageID(n) {
		return n
	}
	return ""
}

// nameOf is an image's first tag, else its first digest reference, else its ID.
func nameOf(im *runtimeapi.Image) string {
	if t := im.GetRepoTags(); len(t) > 0 {
		return t[0]
	}
	if d := im.GetRepoDigests(); len(d) > 0 {
		return d[0]
	}
	return im.GetId()
}

// isImageID reports whether s is an image ID ("sha256:<64 hex>" or bare hex)
// rather than a name.
func isImageID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// SplitImage splits an image reference into repository and tag. A digest
// ("repo@sha256:...") is returned as the tag; "repo:tag@sha256:..." gives
// "tag@sha256:...". A reference without either has an empty tag: the runtime's
// default ("latest") is not assumed. A colon before the last slash belongs to a
// registry's port, not to a tag.
func SplitImage(ref string) (repository, tag string) {
	if isImageID(ref) {
		return "", ref
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	repository = name
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		repository, tag = name[:i], name[i+1:]
	}
	if hasDigest {
		if tag != "" {
			return repository, tag + "@" + digest
		}
		return repository, digest
	}
	return repository, tag
}

// get returns a live cache entry and marks it recently used.
func (c *Client) get(id string) (entry, bool) {
	el, ok := c.byID[id]
	if !ok {
		return entry{}, false
	}
	e := el.Value.(*entry)
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.byID, id)
		return entry{}, false
	}
	c.lru.MoveToFront(el)
	return *e, true
}

// put adds or replaces an entry, evicting the least recently used beyond size.
func (c *Client) put(e entry) {
	if el, ok := c.byID[e.id]; ok {
		*el.Value.(*entry) = e
		c.lru.MoveToFront(el)
		return
	}
	c.byID[e.id] = c.lru.PushFront(&e)
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.byID, old.Value.(*entry).id)
	}
}

func (c *Client) expiry(found bool) time.Time {
	if found {
		return time.Time{}
	}
	return c.now().Add(notFoundTTL)
}

// unavailable reports whether err means the runtime did not answer (rather than
// answered "no").
func unavailable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// trimScheme accepts IDs as Kubernetes shows them ("containerd://<id>").
func trimScheme(id string) string {
	if _, after, ok := strings.Cut(id, "://"); ok {
		return after
	}
	return id
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
