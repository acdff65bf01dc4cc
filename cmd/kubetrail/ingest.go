package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/falco"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/k8saudit"
	"github.com/kubetrail/kubetrail/tetragon"
)

// ingestBatchSize is how many audit events go in one webhook-style POST.
const ingestBatchSize = 2000

// runtimeBatchSize is how many imported runtime events go in one agent batch.
const runtimeBatchSize = 5000

func newIngestCommand() *cobra.Command {
	var (
		c        clientFlags
		format   string
		cluster  string
		keepOn   bool
		progress bool
		stream   string
		node     string
	)
	cmd := &cobra.Command{
		Use:   "ingest --format k8s-audit|tetragon|falco FILE|-",
		Short: "Send an audit log file, or a Tetragon or Falco export, to the server",
		Long: `Read a file (or standard input, "-") and send it to the server.

--format k8s-audit reads a Kubernetes audit log (JSON lines from --audit-log-path,
pretty-printed events, saved webhook EventLists, AKS Event Hub records;
audit.k8s.io/v1 and v1beta1) and sends it in webhook batches, through the same path
as the audit webhook.

--format tetragon reads Tetragon's JSON export (its export file, 'tetra getevents -o
json', JSON lines or pretty-printed): executions and exits become process events,
tcp_connect kprobes network events, and file kprobes that change a file file events.
--format falco reads Falco's JSON alerts (json_output, one per line): the process,
connection or file change each alert is about becomes an event; the rule and
priority are not stored. Records that are not activity kubetrail records (reads,
closes, k8s_audit alerts, Falco's metrics, ...) are skipped and counted by reason.
Both send the events as an agent would, numbered from 1 in file order on the stream
--stream, by default "import.<format>.<first 12 hex digits of the SHA-256 of the
input>": importing the same input again stores nothing twice. Events without a node
get --node, events without a cluster --cluster-name.

A record that cannot be read is reported with its line number and the reason. By
default the first bad record stops the import before anything of its batch is sent;
with --keep-going every bad record is reported, the good ones are sent, and the
command still exits non-zero.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "k8s-audit":
				for _, f := range []string{"stream", "node"} {
					if cmd.Flags().Changed(f) {
						return kubetrail.ErrorAt(kubetrail.EINVALID, "--"+f, "applies to --format tetragon and falco only")
					}
				}
			case "tetragon", "falco":
				client, err := c.client()
				if err != nil {
					return err
				}
				return ingestRuntime(cmd, client, runtimeImport{format: format, name: args[0], stream: stream,
					node: node, cluster: cluster, keepOn: keepOn, progress: progress})
			default:
				return kubetrail.ErrorAt(kubetrail.EINVALID, "--format", "%q is not supported; this version reads k8s-audit, tetragon and falco", format)
			}
			client, err := c.client()
			if err != nil {
				return err
			}
			name := args[0]
			var in io.Reader
			var size int64
			if name == "-" {
				in, name = os.Stdin, "standard input"
			} else {
				f, n, err := openInput(name)
				if err != nil {
					return err
				}
				defer f.Close()
				in, size = f, n
			}
			counter := &countingReader{r: in}
			reader := k8saudit.NewReader(counter, cluster)
			stderr := cmd.ErrOrStderr()
			bar := newProgress(stderr, progress && isTerminal(stderr), size)

			start := time.Now()
			bad := &badRecords{name: name, out: stderr, keepGoing: keepOn, clear: bar.clear}
			out := &batchSender[json.RawMessage]{name: name, size: ingestBatchSize,
				send: func(items []json.RawMessage) (kubetrail.WriteResult, error) {
					return client.SendAudit(cmd.Context(), cluster, k8saudit.EncodeEventList(items))
				}}
			for {
				_, err := reader.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					if err := bad.add(err, out.sent); err != nil {
						return err
					}
					continue
				}
				if err := out.add(append(json.RawMessage(nil), reader.Raw()...), func() { bar.update(counter.n, out.sent) }); err != nil {
					return err
				}
			}
			if err := out.flush(); err != nil {
				return err
			}
			bar.clear()
			fmt.Fprintf(stderr, "%s: %d audit events sent in %s (%d stored or updated, %d already stored), %d bad records%s\n",
				name, out.sent, time.Since(start).Round(time.Millisecond), out.stored, out.dupes, bad.n, raisedNote(out.raised))
			if err := bad.err(); err != nil {
				return err
			}
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&format, "format", "k8s-audit", "input format: k8s-audit, tetragon or falco")
	cmd.Flags().StringVar(&cluster, "cluster-name", "default", "cluster the events belong to (tetragon, falco: when the record names none)")
	cmd.Flags().BoolVar(&keepOn, "keep-going", false, "report every bad record and send the good ones")
	cmd.Flags().BoolVar(&progress, "progress", true, "show a progress bar when standard error is a terminal")
	cmd.Flags().StringVar(&stream, "stream", "", `stream to send tetragon and falco events on (default "import.<format>.<SHA-256 prefix of the input>")`)
	cmd.Flags().StringVar(&node, "node", "imported", "node of tetragon and falco events whose record names none")
	return cmd
}

// runtimeImport is what 'kubetrail ingest --format tetragon|falco' was asked.
type runtimeImport struct {
	format, name string
	stream, node string
	cluster      string
	keepOn       bool
	progress     bool
}

// runtimeReader is what the tetragon and falco readers share: the next record's
// event, or why it was skipped, or why it could not be read (*kubetrail.Error).
type runtimeReader interface {
	Next() (kubetrail.Event, string, error)
}

// ingestRuntime imports a Tetragon export or Falco alerts: it converts them and
// sends them as an agent sends its events, on one stream numbered in file order,
// so that importing the same input twice stores every event once.
func ingestRuntime(cmd *cobra.Command, client *kthttp.Client, o runtimeImport) error {
	name := o.name
	var (
		in   io.Reader
		size int64
		sum  []byte
	)
	if name == "-" {
		// Standard input is read whole: the default stream name is its hash, and
		// it must be known before the first batch is sent.
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		h := sha256.Sum256(data)
		in, size, sum, name = bytes.NewReader(data), int64(len(data)), h[:], "standard input"
	} else {
		f, n, err := openInput(name)
		if err != nil {
			return err
		}
		defer f.Close()
		size = n
		if o.stream == "" {
			// Hash the file in a first pass rather than hold it in memory.
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			sum = h.Sum(nil)
		}
		in = f
	}
	stream := o.stream
	if stream == "" {
		stream = "import." + o.format + "." + hex.EncodeToString(sum)[:12]
	}
	if err := kubetrail.ValidStream(stream); err != nil {
		return kubetrail.ErrorAt(kubetrail.EINVALID, "--stream", "%v", err)
	}

	counter := &countingReader{r: in}
	var reader runtimeReader
	var alerts *falco.Reader
	if o.format == "tetragon" {
		reader = tetragon.NewReader(counter)
	} else {
		alerts = falco.NewReader(counter)
		reader = alerts
	}
	stderr := cmd.ErrOrStderr()
	bar := newProgress(stderr, o.progress && isTerminal(stderr), size)

	var (
		seq     uint64
		skipped int
		reasons = map[string]int{}
		rules   = map[string]int{}
		start   = time.Now()
		bad     = &badRecords{name: name, out: stderr, keepGoing: o.keepOn, clear: bar.clear}
	)
	out := &batchSender[kubetrail.Event]{name: name, size: runtimeBatchSize,
		send: func(events []kubetrail.Event) (kubetrail.WriteResult, error) {
			return client.SendBatch(cmd.Context(), &kubetrail.Batch{Stream: stream, Events: events})
		}}
	for {
		ev, skip, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if err := bad.add(err, out.sent); err != nil {
				return err
			}
			continue
		}
		if skip != "" {
			skipped++
			reasons[skip]++
			continue
		}
		// Skipped and bad records take no number, so the numbering depends on
		// the input alone and a re-import finds every event under its number.
		seq++
		ev.Stream, ev.Seq = stream, seq
		if ev.Cluster == "" {
			ev.Cluster = o.cluster
		}
		if ev.Node == "" {
			ev.Node = o.node // the agent protocol requires one
		}
		if alerts != nil {
			rule, _ := alerts.Alert()
			rules[rule]++
		}
		if err := out.add(ev, func() { bar.update(counter.n, out.sent) }); err != nil {
			return err
		}
	}
	if err := out.flush(); err != nil {
		return err
	}
	bar.clear()
	fmt.Fprintf(stderr, "%s: %d events sent on stream %s in %s (%d stored, %d already stored), %d records skipped, %d bad records%s\n",
		name, out.sent, stream, time.Since(start).Round(time.Millisecond), out.stored, out.dupes, skipped, bad.n, raisedNote(out.raised))
	for _, r := range byCount(reasons) {
		fmt.Fprintf(stderr, "  skipped %d: %s\n", reasons[r], r)
	}
	if len(rules) > 0 {
		// The rules are what Falco detected; kubetrail has no field for them yet,
		// so at least say which rules the imported events came from.
		var parts []string
		for _, r := range byCount(rules) {
			parts = append(parts, fmt.Sprintf("%s (%d)", r, rules[r]))
		}
		fmt.Fprintf(stderr, "  Falco rules of the events sent (not stored): %s\n", strings.Join(parts, ", "))
	}
	if err := bad.err(); err != nil {
		return err
	}
	return nil
}

// byCount returns the keys of m, most frequent first, then in alphabetical order.
func byCount(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return keys
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress draws a one-line progress bar on a terminal.
type progress struct {
	w     io.Writer
	on    bool
	total int64
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, on bool, total int64) *progress {
	return &progress{w: w, on: on, total: total, start: time.Now()}
}

func (p *progress) update(read int64, events int) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	rate := float64(events) / time.Since(p.start).Seconds()
	if p.total > 0 {
		frac := float64(read) / float64(p.total)
		const width = 30
		filled := int(frac * width)
		bar := make([]byte, width)
		for i := range bar {
			if i < filled {
				bar[i] = '#'
			} else {
				bar[i] = '.'
			}
		}
		fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %d events  %.0f/s ", bar, frac*100, events, rate)
	} else {
		fmt.Fprintf(p.w, "\r%d events  %.0f/s ", events, rate)
	}
}

func (p *progress) clear() {
	if p.on && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// batchSender sends what an import reads in batches of size, and counts what the
// server did with it.
type batchSender[T any] struct {
	name  string
	size  int
	send  func([]T) (kubetrail.WriteResult, error)
	batch []T

	sent, stored, dupes int
	raised              int // policy events the server's policies raised
}

// add queues x and sends the batch once it is full, calling sent after.
func (b *batchSender[T]) add(x T, sent func()) error {
	b.batch = append(b.batch, x)
	if len(b.batch) < b.size {
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	sent()
	return nil
}

// flush sends what is queued.
func (b *batchSender[T]) flush() error {
	if len(b.batch) == 0 {
		return nil
	}
	res, err := b.send(b.batch)
	if err != nil {
		return fmt.Errorf("send events %d to %d of %s: %w", b.sent+1, b.sent+len(b.batch), b.name, err)
	}
	b.sent += len(b.batch)
	b.stored += res.Stored + res.Updated
	b.dupes += res.Duplicates
	b.raised += res.Raised
	b.batch = b.batch[:0]
	return nil
}

// badRecords counts and reports the records an import refuses, the same way for
// every format.
type badRecords struct {
	name      string
	out       io.Writer
	keepGoing bool
	clear     func() // clears a progress bar before a report
	n         int
	first     error
}

// add reports a refused record and returns the error that stops the import, or
// nil to go on. An error that is not about a record (reading the input failed)
// always stops it.
func (b *badRecords) add(err error, sent int) error {
	var de *kubetrail.Error
	if !errors.As(err, &de) {
		return fmt.Errorf("read %s: %w", b.name, err)
	}
	b.n++
	b.clear()
	fmt.Fprintf(b.out, "%s: %v\n", b.name, err)
	if b.first == nil {
		b.first = err
	}
	if !b.keepGoing {
		return kubetrail.Errorf(kubetrail.EINVALID, "%s: stopped at the first bad record (%d events sent before it); --keep-going reports every bad record and sends the rest", b.name, sent)
	}
	return nil
}

// err says, at the end, that records were refused.
func (b *badRecords) err() error {
	if b.n == 0 {
		return nil
	}
	return kubetrail.Errorf(kubetrail.EINVALID, "%s: %d records could not be read; the first: %v", b.name, b.n, b.first)
}

// openInput opens a file to ingest and says how big it is (0 when it cannot
// tell, as for a pipe), for the progress bar.
func openInput(name string) (*os.File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, kubetrail.Errorf(kubetrail.EINVALID, "open %s: %v", name, err)
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return f, size, nil
}

// raisedNote says how many policy events a run raised, if any.
func raisedNote(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "; 1 policy event raised (kubetrail events)"
	}
	return fmt.Sprintf("; %d policy events raised (kubetrail events)", n)
}
