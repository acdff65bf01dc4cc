package notify_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubetrail/kubetrail"
	"github.com/kubetrail/kubetrail/notify"
)

func TestNewInvalid(t *testing.T) {
	hook := func(mod func(*notify.Config)) notify.Config {
		c := notify.Config{Name: "hook", Type: "webhook", URL: "https://hooks.example.com/services/SECRET"}
		mod(&c)
		return c
	}
	sys := func(mod func(*notify.Config)) notify.Config {
		c := notify.Config{Name: "siem", Type: "syslog", Network: "udp", Address: "127.0.0.1:514"}
		mod(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  notify.Config
		want string
	}{
		{"missing name", hook(func(c *notify.Config) { c.Name = "" }), "name is missing"},
		{"bad name", hook(func(c *notify.Config) { c.Name = "my hook" }), `action "my hook": name has ' '`},
		{"missing type", hook(func(c *notify.Config) { c.Type = "" }), `action "hook": type is missing`},
		{"bad type", hook(func(c *notify.Config) { c.Type = "email" }), `action "hook": type "email" is unknown (want webhook or syslog)`},
		{"missing url", hook(func(c *notify.Config) { c.URL = "" }), `action "hook": url is missing`},
		{"bad url scheme", hook(func(c *notify.Config) { c.URL = "ftp://files.example.com/SECRET" }), `action "hook": url has scheme "ftp" (want http or https)`},
		{"url without scheme", hook(func(c *notify.Config) { c.URL = "hooks.example.com/SECRET" }), `action "hook": url has no scheme`},
		{"url without host", hook(func(c *notify.Config) { c.URL = "https:///SECRET" }), `action "hook": url has no host`},
		{"unparsable url", hook(func(c *notify.Config) { c.URL = "https://exa mple.com/SECRET" }), `action "hook": url does not parse`},
		{"unknown webhook format", hook(func(c *notify.Config) { c.Format = "xml" }), `action "hook": format "xml" is unknown for a webhook (want json, falco or slack)`},
		{"bad header name", hook(func(c *notify.Config) { c.Headers = map[string]string{"X Token": "1"} }), `action "hook": header name "X Token"`},
		{"header value with newline", hook(func(c *notify.Config) { c.Headers = map[string]string{"Authorization": "Bearer a\r\nX: b"} }), `action "hook": header Authorization has a line break`},
		{"host header", hook(func(c *notify.Config) { c.Headers = map[string]string{"host": "x"} }), `action "hook": header Host is set by the HTTP client`},
		{"negative timeout", hook(func(c *notify.Config) { c.Timeout.Duration = -time.Second }), `action "hook": timeout -1s is negative`},
		{"syslog field on webhook", hook(func(c *notify.Config) { c.Address = "x:1"; c.Facility = "user" }), `action "hook": address, facility does not apply to a webhook action`},
		{"webhook field on syslog", sys(func(c *notify.Config) { c.URL = "https://x" }), `action "siem": url does not apply to a syslog action`},
		{"bad facility", sys(func(c *notify.Config) { c.Facility = "local9" }), `action "siem": facility "local9" is unknown`},
		{"bad network", sys(func(c *notify.Config) { c.Network = "sctp" }), `action "siem": network "sctp" is unknown (want udp, tcp or unix)`},
		{"missing address", sys(func(c *notify.Config) { c.Address = "" }), `action "siem": address is missing`},
		{"address without port", sys(func(c *notify.Config) { c.Address = "siem.example.com" }), `action "siem": address "siem.example.com" is not host:port`},
		{"address with bad port", sys(func(c *notify.Config) { c.Address = "siem:70000" }), `action "siem": address "siem:70000" has port "70000"`},
		{"unknown syslog format", sys(func(c *notify.Config) { c.Format = "slack" }), `action "siem": format "slack" is unknown for syslog (want text or json)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := notify.New(tc.cfg)
			if err == nil {
				t.Fatalf("New accepted %+v as %s", tc.cfg, a.Name())
			}
			if code := kubetrail.ErrorCode(err); code != kubetrail.EINVALID {
				t.Errorf("code %q, want %q (%v)", code, kubetrail.EINVALID, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q repeats the URL's path", err)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	doc := `
- name: slack-security
  type: webhook
  url: https://hooks.slack.com/services/T0/B0/XXXX
  format: slack
  timeout: 5s
  headers:
    Authorization: Bearer token
- name: siem
  type: syslog
  network: tcp
  address: siem.example.com:6514
  facility: user
  format: json
`
	var cfgs []notify.Config
	if err := yaml.UnmarshalStrict([]byte(doc), &cfgs); err != nil {
		t.Fatal(err)
	}
	if cfgs[0].Timeout.Duration != 5*time.Second || cfgs[0].Headers["Authorization"] != "Bearer token" || cfgs[1].Facility != "user" {
		t.Errorf("decoded %+v", cfgs)
	}
	actions, err := notify.NewAll(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 2 || actions[0].Name() != "slack-security" || actions[1].Name() != "siem" {
		t.Errorf("actions %v", actions)
	}
	if _, ok := actions[0].(*notify.Webhook); !ok {
		t.Errorf("first action is %T", actions[0])
	}
	if _, ok := actions[1].(*notify.Syslog); !ok {
		t.Errorf("second action is %T", actions[1])
	}

	// Back to YAML and again.
	out, err := yaml.Marshal(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "timeout: 5s") || strings.Count(string(out), "timeout") != 1 {
		t.Errorf("marshalled:\n%s", out)
	}

	if err := yaml.UnmarshalStrict([]byte("name: x\ntype: webhook\ntimeout: 5\n"), new(notify.Config)); err == nil || !strings.Contains(err.Error(), `want a duration such as "10s"`) {
		t.Errorf("a bare number as timeout: %v", err)
	}
	if _, err := notify.NewAll([]notify.Config{cfgs[0], cfgs[0]}); err == nil || !strings.Contains(err.Error(), `action "slack-security": another action has the same name`) {
		t.Errorf("duplicate names: %v", err)
	}
}
