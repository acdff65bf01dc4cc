package notify_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/notify"
)

// message is an RFC 5424 message as a receiver parses it.
type message struct {
	Pri                                            int
	Timestamp, Host, App, ProcID, MsgID, SDID, Msg string
	Params                                         map[string]string
}

// parse5424 parses one RFC 5424 message with a single structured data element.
func parse5424(t *testing.T, b []byte) message {
	t.Helper()
	s := string(b)
	fail := func(why string) message { t.Fatalf("not RFC 5424 (%s): %q", why, s); return message{} }
	var m message
	if !strings.HasPrefix(s, "<") {
		return fail("no PRI")
	}
	end := strings.IndexByte(s, '>')
	pri, err := strconv.Atoi(s[1:max(end, 1)])
	if end < 2 || end > 4 || err != nil || pri > 191 {
		return fail("PRI")
	}
	m.Pri = pri
	s = s[end+1:]
	head := strings.SplitN(s, " ", 7)
	if len(head) != 7 || head[0] != "1" {
		return fail("header")
	}
	m.Timestamp, m.Host, m.App, m.ProcID, m.MsgID = head[1], head[2], head[3], head[4], head[5]
	if _, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil {
		return fail("timestamp")
	}
	s = head[6]
	m.Params = map[string]string{}
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else {
		if !strings.HasPrefix(s, "[") {
			return fail("structured data")
		}
		i := strings.IndexAny(s, " ]")
		m.SDID = s[1:i]
		s = s[i:]
		for strings.HasPrefix(s, " ") {
			eq := strings.Index(s, `="`)
			if eq < 0 {
				return fail("SD-PARAM")
			}
			name := s[1:eq]
			s = s[eq+2:]
			var v strings.Builder
			for {
				if s == "" {
					return fail("unterminated PARAM-VALUE")
				}
				c := s[0]
				s = s[1:]
				if c == '\\' && s != "" && strings.IndexByte(`"\]`, s[0]) >= 0 {
					v.WriteByte(s[0])
					s = s[1:]
					continue
				}
				if c == '"' {
					break
				}
				if c == ']' {
					return fail("unescaped ] in PARAM-VALUE")
				}
				v.WriteByte(c)
			}
			m.Params[name] = v.String()
		}
		if !strings.HasPrefix(s, "]") {
			return fail("SD-ELEMENT end")
		}
		s = s[1:]
	}
	if s != "" {
		if s[0] != ' ' {
			return fail("MSG separator")
		}
		m.Msg = strings.TrimPrefix(s[1:], "\uFEFF")
	}
	return m
}

func newSyslog(t *testing.T, network, address, facility, format string) notify.Action {
	t.Helper()
	a, err := notify.New(notify.Config{Name: "siem", Type: "syslog", Network: network, Address: address, Facility: facility, Format: format})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.(io.Closer).Close() })
	return a
}

func readDatagram(t *testing.T, pc net.PacketConn) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestSyslogUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	a := newSyslog(t, "udp", pc.LocalAddr().String(), "", "")
	events := policyEvents(2)
	events[0].Alert.Priority = "CRITICAL"
	events[0].Alert.Rule = `Read "sensitive" file [untrusted]`
	events[1].Alert.Priority = "DEBUG"
	events[1].Alert.Output = "café ouvert"
	if err := a.Send(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	m := parse5424(t, readDatagram(t, pc))
	if m.Pri != 16*8+2 {
		t.Errorf("PRI %d, want local0 (16) * 8 + CRITICAL (2) = 130", m.Pri)
	}
	if m.App != "kubetrail" || m.Host != "node-1" || m.MsgID != "policy" || m.Timestamp != "2026-05-01T12:00:00.123456Z" {
		t.Errorf("header %+v", m)
	}
	if m.Msg != events[0].Alert.Output {
		t.Errorf("MSG %q, want %q", m.Msg, events[0].Alert.Output)
	}
	if m.SDID != notify.SyslogSDID {
		t.Errorf("SD-ID %q", m.SDID)
	}
	for k, want := range map[string]string{
		"rule": events[0].Alert.Rule, "priority": "CRITICAL", "policy": "baseline", "namespace": "shop",
		"pod": "cart-7d9f-abc", "image": "ghcr.io/shop/cart:1.2", "tags": "container,shell,mitre_execution,T1059",
		"user": "alice@example.com", "id": events[0].ID(), "trigger": "stream-1/1",
	} {
		if m.Params[k] != want {
			t.Errorf("SD %s = %q, want %q", k, m.Params[k], want)
		}
	}
	raw := readDatagram(t, pc)
	m = parse5424(t, raw)
	if m.Pri != 16*8+7 || m.Msg != "café ouvert" || !strings.Contains(string(raw), "\uFEFFcafé") {
		t.Errorf("second message %q", raw)
	}

	// Facility user, JSON body.
	a = newSyslog(t, "udp", pc.LocalAddr().String(), "user", "json")
	if err := a.Send(context.Background(), policyEvents(1)); err != nil {
		t.Fatal(err)
	}
	m = parse5424(t, readDatagram(t, pc))
	if m.Pri != 1*8+4 {
		t.Errorf("PRI %d, want user (1) * 8 + WARNING (4) = 12", m.Pri)
	}
	var flat map[string]any
	if err := json.Unmarshal([]byte(m.Msg), &flat); err != nil || flat["policy.rule"] != "Terminal shell in container" {
		t.Errorf("JSON MSG %q: %v", m.Msg, err)
	}
}

func TestSyslogSeverity(t *testing.T) {
	for i, p := range []string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"} {
		if s := notify.Severity(p); s != i {
			t.Errorf("%s: severity %d, want %d", p, s, i)
		}
	}
}

func TestSyslogTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		var msgs []string
		for len(msgs) < 3 {
			// RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG.
			l, err := r.ReadString(' ')
			if err != nil {
				break
			}
			n, err := strconv.Atoi(strings.TrimSuffix(l, " "))
			if err != nil {
				msgs = append(msgs, fmt.Sprintf("bad length %q", l))
				break
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				break
			}
			msgs = append(msgs, string(b))
		}
		got <- msgs
	}()
	a := newSyslog(t, "tcp", ln.Addr().String(), "", "")
	events := policyEvents(3)
	events[1].Alert.Output = "two lines:\nsecond one"
	if err := a.Send(context.Background(), events[:2]); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(context.Background(), events[2:]); err != nil { // on the same connection
		t.Fatal(err)
	}
	msgs := <-got
	if len(msgs) != 3 {
		t.Fatalf("received %q", msgs)
	}
	for i, raw := range msgs {
		m := parse5424(t, []byte(raw))
		if m.Msg != events[i].Alert.Output || m.Pri != 16*8+4 || m.App != "kubetrail" {
			t.Errorf("message %d: %+v", i, m)
		}
	}
}

func TestSyslogUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	a := newSyslog(t, "unix", path, "auth", "")
	if err := a.Send(context.Background(), policyEvents(1)); err != nil {
		t.Fatal(err)
	}
	m := parse5424(t, readDatagram(t, pc))
	if m.Pri != 4*8+4 || m.Msg != policyEvent(1).Alert.Output {
		t.Errorf("message %+v", m)
	}

	// No one listening: an error to retry, not a panic; the next send dials again.
	pc.Close()
	if err := a.Send(context.Background(), policyEvents(1)); err == nil || notify.IsPermanent(err) {
		t.Errorf("send to a closed socket: %v", err)
	}
	os.Remove(path)
	pc2, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc2.Close()
	if err := a.Send(context.Background(), policyEvents(1)); err != nil {
		t.Fatalf("send after the receiver came back: %v", err)
	}
	if m := parse5424(t, readDatagram(t, pc2)); m.App != "kubetrail" {
		t.Errorf("message %+v", m)
	}
}
