package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/k8saudit"
)

// ingestBatchSize is how many audit events go in one webhook-style POST.
const ingestBatchSize = 2000

func newIngestCommand() *cobra.Command {
	var (
		c        clientFlags
		format   string
		cluster  string
		keepOn   bool
		progress bool
	)
	cmd := &cobra.Command{
		Use:   "ingest --format k8s-audit FILE|-",
		Short: "Send an audit log file to the server, as its audit webhook would",
		Long: `Read a Kubernetes audit log (JSON lines from --audit-log-path, pretty-printed events,
saved webhook EventLists, AKS Event Hub records; audit.k8s.io/v1 and v1beta1) and send
it to the server in webhook batches, through the same path as the audit webhook.

A record that cannot be read is reported with its line number and the reason. By
default the first bad record stops the import before anything of its batch is sent;
with --keep-going every bad record is reported, the good ones are sent, and the
command still exits non-zero.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "k8s-audit" {
				return kubetrail.ErrorAt(kubetrail.EINVALID, "--format", "%q is not supported; this version reads k8s-audit", format)
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
				f, err := os.Open(name)
				if err != nil {
					return kubetrail.Errorf(kubetrail.EINVALID, "open %s: %v", name, err)
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					size = fi.Size()
				}
				in = f
			}
			counter := &countingReader{r: in}
			reader := k8saudit.NewReader(counter, cluster)
			stderr := cmd.ErrOrStderr()
			bar := newProgress(stderr, progress && isTerminal(stderr), size)

			var (
				batch         [][]byte
				sent, bad     int
				stored, dupes int
				firstBad      error
				start         = time.Now()
			)
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				res, err := client.SendAudit(cmd.Context(), eventList(batch))
				if err != nil {
					return fmt.Errorf("send events %d to %d of %s: %w", sent+1, sent+len(batch), name, err)
				}
				sent += len(batch)
				stored += res.Stored + res.Updated
				dupes += res.Duplicates
				batch = batch[:0]
				return nil
			}
			for {
				_, err := reader.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					var de *kubetrail.Error
					if !errors.As(err, &de) {
						return fmt.Errorf("read %s: %w", name, err)
					}
					bad++
					bar.clear()
					fmt.Fprintf(stderr, "%s: %v\n", name, err)
					if firstBad == nil {
						firstBad = err
					}
					if !keepOn {
						return kubetrail.Errorf(kubetrail.EINVALID, "%s: stopped at the first bad record (%d events sent before it); --keep-going reports every bad record and sends the rest", name, sent)
					}
					continue
				}
				batch = append(batch, append([]byte(nil), reader.Raw()...))
				if len(batch) == ingestBatchSize {
					if err := flush(); err != nil {
						return err
					}
					bar.update(counter.n, sent)
				}
			}
			if err := flush(); err != nil {
				return err
			}
			bar.clear()
			fmt.Fprintf(stderr, "%s: %d audit events sent in %s (%d stored or updated, %d already stored), %d bad records\n",
				name, sent, time.Since(start).Round(time.Millisecond), stored, dupes, bad)
			if bad > 0 {
				return kubetrail.Errorf(kubetrail.EINVALID, "%s: %d records could not be read; the first: %v", name, bad, firstBad)
			}
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&format, "format", "k8s-audit", "input format: k8s-audit")
	cmd.Flags().StringVar(&cluster, "cluster-name", "default", "cluster the events belong to")
	cmd.Flags().BoolVar(&keepOn, "keep-going", false, "report every bad record and send the good ones")
	cmd.Flags().BoolVar(&progress, "progress", true, "show a progress bar when standard error is a terminal")
	return cmd
}

// eventList wraps audit events as the webhook sends them.
func eventList(items [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString("]}")
	return b.Bytes()
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
