package notify

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kubetrail/kubetrail"
)

// Syslog sends one RFC 5424 message per policy event: over udp and unix
// (unixgram) one datagram per message, over tcp framed by octet counting
// (RFC 6587 3.4.1: "<length> <message>"). It keeps its connection between
// sends and dials again after an error.
//
// A message reads
//
//	<PRI>1 TIMESTAMP HOSTNAME kubetrail - policy [kubetrail@32473 policy=".." rule=".." ...] MSG
//
// PRI is facility*8 + the severity of the rule's priority (see Severity);
// TIMESTAMP the event's time in UTC with microseconds; HOSTNAME the event's node
// (else this host's name); MSG the rule's output (format text) or the event's
// flat JSON (format json). The structured data element repeats the policy, rule,
// priority, source, ids and the trigger's scope; 32473 is the example enterprise
// number of RFC 5612, kubetrail having none of its own.
type Syslog struct {
	name     string
	network  string // as net.Dial takes it
	address  string
	facility int
	format   string
	timeout  time.Duration
	hostname string // fallback for events without a node

	mu   sync.Mutex
	conn net.Conn
}

// SyslogSDID is the SD-ID of the structured data element of each message.
const SyslogSDID = "kubetrail@32473"

// maxDatagram bounds a UDP message; a longer MSG is cut (RFC 5426 allows up to
// 65507 bytes over IPv4, receivers often less).
const maxDatagram = 64000

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Facility returns the code of a facility name (local0 is 16), or false.
func Facility(name string) (int, bool) {
	f, ok := facilities[strings.ToLower(name)]
	return f, ok
}

// Severity returns the syslog severity of a Falco priority: EMERGENCY 0, ALERT 1,
// CRITICAL 2, ERROR 3, WARNING 4, NOTICE 5, INFORMATIONAL 6, DEBUG 7; an unknown
// priority is a WARNING, so that it is not lost among the informational.
func Severity(priority string) int {
	switch strings.ToUpper(priority) {
	case "EMERGENCY":
		return 0
	case "ALERT":
		return 1
	case "CRITICAL":
		return 2
	case "ERROR":
		return 3
	case "WARNING", "WARN":
		return 4
	case "NOTICE":
		return 5
	case "INFORMATIONAL", "INFO":
		return 6
	case "DEBUG":
		return 7
	}
	return 4
}

// NewSyslog returns the syslog action cfg describes.
func NewSyslog(cfg Config) (*Syslog, error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Type != TypeSyslog {
		return nil, invalid(cfg.Name, "type %q is not syslog", cfg.Type)
	}
	if err := refuseFields(cfg, map[string]bool{"network": true, "address": true, "facility": true}); err != nil {
		return nil, err
	}
	s := &Syslog{name: cfg.Name, address: cfg.Address}
	switch cfg.Network {
	case "", "udp":
		s.network = "udp"
	case "udp4", "udp6", "tcp", "tcp4", "tcp6":
		s.network = cfg.Network
	case "unix", "unixgram":
		s.network = "unixgram"
	default:
		return nil, invalid(cfg.Name, "network %q is unknown (want udp, tcp or unix)", cfg.Network)
	}
	if cfg.Address == "" {
		return nil, invalid(cfg.Name, "address is missing")
	}
	if s.network != "unixgram" {
		host, port, err := net.SplitHostPort(cfg.Address)
		if err != nil {
			return nil, invalid(cfg.Name, "address %q is not host:port", cfg.Address)
		}
		if host == "" {
			return nil, invalid(cfg.Name, "address %q has no host", cfg.Address)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, invalid(cfg.Name, "address %q has port %q (want 1 to 65535)", cfg.Address, port)
		}
	}
	s.facility = facilities["local0"]
	if cfg.Facility != "" {
		f, ok := Facility(cfg.Facility)
		if !ok {
			return nil, invalid(cfg.Name, "facility %q is unknown (want kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, solaris-cron or local0 to local7)", cfg.Facility)
		}
		s.facility = f
	}
	switch cfg.Format {
	case "", FormatText:
		s.format = FormatText
	case FormatJSON:
		s.format = FormatJSON
	default:
		return nil, invalid(cfg.Name, "format %q is unknown for syslog (want text or json)", cfg.Format)
	}
	t, err := timeout(cfg)
	if err != nil {
		return nil, err
	}
	s.timeout = t
	s.hostname, _ = os.Hostname()
	return s, nil
}

// Name returns the action's name.
func (s *Syslog) Name() string { return s.name }

// Send writes one message per event; on a failure it closes the connection and
// returns a *PartialError when some messages were written before.
func (s *Syslog) Send(ctx context.Context, events []kubetrail.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if s.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, s.network, s.address)
		if err != nil {
			return fmt.Errorf("syslog %q: %w", s.name, err)
		}
		s.conn = c
	}
	// A cancelled context interrupts a blocked write.
	conn := s.conn
	conn.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var frame []byte
	for i := range events {
		msg := s.Format(&events[i])
		frame = frame[:0]
		if strings.HasPrefix(s.network, "tcp") {
			frame = strconv.AppendInt(frame, int64(len(msg)), 10)
			frame = append(frame, ' ')
		}
		frame = append(frame, msg...)
		if _, err := conn.Write(frame); err != nil {
			conn.Close()
			s.conn = nil
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return partial(i, fmt.Errorf("syslog %q: %w", s.name, err))
		}
	}
	return nil
}

// Close closes the connection, if one is open.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Format returns the RFC 5424 message for e, without framing.
func (s *Syslog) Format(e *kubetrail.Event) []byte {
	var b bytes.Buffer
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(s.facility*8 + Severity(e.Alert.Priority)))
	b.WriteString(">1 ")
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	b.WriteByte(' ')
	host := e.Node
	if host == "" {
		host = s.hostname
	}
	b.WriteString(headerField(host, 255))
	b.WriteString(" kubetrail - policy ")

	b.WriteString("[" + SyslogSDID)
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(" " + name + `="`)
		for _, r := range strings.ToValidUTF8(value, "\uFFFD") {
			if r == '"' || r == '\\' || r == ']' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	param("policy", e.Alert.Policy)
	param("rule", e.Alert.Rule)
	param("priority", e.Alert.Priority)
	param("source", e.Alert.Source)
	param("id", e.ID())
	param("trigger", e.Alert.Trigger)
	param("cluster", e.Cluster)
	param("node", e.Node)
	param("namespace", e.Namespace)
	param("workloadKind", e.WorkloadKind)
	param("workload", e.WorkloadName)
	param("pod", e.PodName)
	param("container", e.ContainerName)
	param("containerID", e.ContainerID)
	param("image", e.Image())
	param("session", e.SessionID)
	param("user", e.Audit.UserName)
	param("tags", strings.Join(e.Alert.Tags, ","))
	b.WriteString("] ")

	var msg string
	if s.format == FormatJSON {
		j, err := e.MarshalJSON()
		if err != nil {
			j = []byte("{}")
		}
		msg = string(j)
	} else {
		msg = e.Alert.Output
	}
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	if strings.HasPrefix(s.network, "udp") && b.Len()+len(msg)+3 > maxDatagram {
		msg = truncateUTF8(msg, max(maxDatagram-b.Len()-3, 0))
	}
	// RFC 5424 6.4: a UTF-8 MSG starts with a BOM; plain ASCII needs none.
	if !isASCII(msg) {
		b.WriteString("\uFEFF")
	}
	b.WriteString(msg)
	return b.Bytes()
}

// headerField makes s a valid header field: printable US-ASCII without spaces,
// at most n bytes, "-" when empty.
func headerField(s string, n int) string {
	out := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(out) < n; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
