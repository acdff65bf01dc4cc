// Package notify delivers policy events outside the trail: the actions a policy
// names. An Action makes one delivery attempt of a batch (a Webhook posts JSON,
// a Syslog sends RFC 5424 messages); a Dispatcher queues batches per action
// without ever blocking ingest, and retries, counts and logs their delivery.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kubetrail/kubetrail"
)

// Action delivers policy events to one destination.
type Action interface {
	// Name is the action's name, as policies refer to it.
	Name() string
	// Send makes one delivery attempt of events, in order. An error that
	// IsPermanent says that trying again will not help; a *PartialError says how
	// many events, from the first, were delivered before the failure.
	Send(ctx context.Context, events []kubetrail.Event) error
}

// Action types.
const (
	TypeWebhook = "webhook"
	TypeSyslog  = "syslog"
)

// Payload formats. A webhook posts json (default), falco or slack; a syslog
// action writes text (default) or json as each message's MSG.
const (
	FormatJSON  = "json"
	FormatFalco = "falco"
	FormatSlack = "slack"
	FormatText  = "text"
)

// DefaultTimeout bounds one delivery attempt when the config sets none.
const DefaultTimeout = 10 * time.Second

// Config describes one action, as a policy file declares it. It is read from
// YAML through sigs.k8s.io/yaml, hence the json tags.
type Config struct {
	// Name identifies the action; policies name it. Letters, digits and . _ -,
	// at most 63 bytes (it is a metric label).
	Name string `json:"name"`
	// Type is webhook or syslog.
	Type string `json:"type"`

	// URL is where a webhook posts: http or https. It is not repeated in errors
	// or logs beyond its scheme and host, since chat webhooks keep a secret in it.
	URL string `json:"url,omitempty"`
	// Format is, for a webhook: json (default), falco or slack; for syslog:
	// text (default) or json.
	Format string `json:"format,omitempty"`
	// Headers are added to every webhook request (Authorization, for example).
	Headers map[string]string `json:"headers,omitempty"`

	// Network is, for syslog: udp (default), tcp or unix (a unixgram socket such
	// as /dev/log); udp4, udp6, tcp4 and tcp6 pin the address family.
	Network string `json:"network,omitempty"`
	// Address is, for syslog, host:port for udp and tcp, a socket path for unix.
	Address string `json:"address,omitempty"`
	// Facility is, for syslog, the facility's name: kern, user, mail, daemon,
	// auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security,
	// console, solaris-cron or local0 (default) to local7.
	Facility string `json:"facility,omitempty"`

	// Timeout bounds one delivery attempt ("5s", "1m"); DefaultTimeout when 0.
	Timeout Duration `json:"timeout,omitzero"`
}

// Duration is a time.Duration written as Go writes it ("10s", "1m30s") in JSON
// and YAML.
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string such as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// UnmarshalJSON reads a string such as "10s" or "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"10s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"10s\": %w", err)
	}
	d.Duration = v
	return nil
}

// New returns the action cfg describes, or an EINVALID error that says which
// action and what about it is wrong.
func New(cfg Config) (Action, error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	switch cfg.Type {
	case TypeWebhook:
		return NewWebhook(cfg)
	case TypeSyslog:
		return NewSyslog(cfg)
	case "":
		return nil, invalid(cfg.Name, "type is missing (want webhook or syslog)")
	}
	return nil, invalid(cfg.Name, "type %q is unknown (want webhook or syslog)", cfg.Type)
}

// NewAll returns the actions cfgs describe, refusing two of the same name.
func NewAll(cfgs []Config) ([]Action, error) {
	seen := make(map[string]bool, len(cfgs))
	out := make([]Action, 0, len(cfgs))
	for _, c := range cfgs {
		if seen[c.Name] {
			return nil, invalid(c.Name, "another action has the same name")
		}
		seen[c.Name] = true
		a, err := New(c)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func validName(name string) error {
	if name == "" {
		return kubetrail.Errorf(kubetrail.EINVALID, "action: name is missing")
	}
	if len(name) > 63 {
		return kubetrail.Errorf(kubetrail.EINVALID, "action %q: name is %d bytes long, at most 63 are allowed", name, len(name))
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return kubetrail.Errorf(kubetrail.EINVALID, "action %q: name has %q at byte %d; only letters, digits and . _ - are allowed", name, r, i)
		}
	}
	return nil
}

func invalid(name, format string, args ...any) error {
	return kubetrail.Errorf(kubetrail.EINVALID, "action %q: %s", name, fmt.Sprintf(format, args...))
}

// refuseFields says which fields set in cfg do not apply to its type.
func refuseFields(cfg Config, fields map[string]bool) error {
	var bad []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"url", cfg.URL != ""}, {"headers", len(cfg.Headers) > 0},
		{"network", cfg.Network != ""}, {"address", cfg.Address != ""}, {"facility", cfg.Facility != ""},
	} {
		if f.set && !fields[f.name] {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		return invalid(cfg.Name, "%s does not apply to a %s action", strings.Join(bad, ", "), cfg.Type)
	}
	return nil
}

func timeout(cfg Config) (time.Duration, error) {
	switch t := cfg.Timeout.Duration; {
	case t < 0:
		return 0, invalid(cfg.Name, "timeout %s is negative", t)
	case t == 0:
		return DefaultTimeout, nil
	default:
		return t, nil
	}
}

// PartialError is a failed Send that delivered the first Delivered events: a
// retry sends only the rest.
type PartialError struct {
	Delivered int
	Err       error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%v (after %d delivered)", e.Err, e.Delivered)
}

func (e *PartialError) Unwrap() error { return e.Err }

func partial(delivered int, err error) error {
	if delivered == 0 {
		return err
	}
	return &PartialError{Delivered: delivered, Err: err}
}

// delivered returns how many of n events a Send that returned err delivered.
func delivered(err error, n int) int {
	if err == nil {
		return n
	}
	var p *PartialError
	if errors.As(err, &p) {
		return min(max(p.Delivered, 0), n)
	}
	return 0
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// Permanent marks err as one that retrying will not cure.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, says it is permanent.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// retryAfter returns the delay the destination asked for before a retry, or 0.
func retryAfter(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// redact returns what of a URL may be shown: its scheme and host.
func redact(u *url.URL) string { return u.Scheme + "://" + u.Host }
