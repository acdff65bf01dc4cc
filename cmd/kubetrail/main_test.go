package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail/internal/sharedtest"
)

// startTestServer runs a real server on a temporary data dir, recorded as the local
// server in a temporary HOME so the CLI finds it as a user's would.
func startTestServer(t *testing.T, opts ...func(*serverOptions)) *runningServer {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBETRAIL_SERVER", "")
	t.Setenv("KUBETRAIL_TOKEN", "")
	t.Setenv("KUBETRAIL_ADMIN_TOKEN", "")
	o := &serverOptions{listen: "127.0.0.1:0", dataDir: t.TempDir(), cluster: "test", retainEach: 1 << 62}
	for _, opt := range opts {
		opt(o)
	}
	srv, err := startServer(context.Background(), o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return srv
}

// run runs the CLI in-process and returns its output and error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// Every real audit file in the shared test data is read by 'kubetrail ingest' and
// sent through the webhook path, or refused with the line and the reason.
func TestIngestSharedAuditFiles(t *testing.T) {
	dir := sharedtest.Dir(t)
	startTestServer(t)
	files, _ := filepath.Glob(filepath.Join(dir, "kube-apiserver-1.33-audit", "*.json"))
	more, _ := filepath.Glob(filepath.Join(dir, "falcosecurity-falco-k8s-audit-traces", "test", "trace_files", "k8s_audit", "*.json"))
	files = append(files, more...)
	files = append(files, filepath.Join(dir, "liggitt-audit2rbac", "testdata", "demo.log"))
	aks, _ := filepath.Glob(filepath.Join(dir, "sysdiglabs-aks-audit-log", "samples", "*.json"))
	files = append(files, aks...)
	if len(files) < 60 {
		t.Fatalf("found only %d audit files", len(files))
	}
	for _, f := range files {
		_, stderr, err := run(t, "ingest", "--format", "k8s-audit", f)
		if strings.HasSuffix(f, "fal_01_003.json") {
			if err == nil || !strings.Contains(stderr, "line 1") {
				t.Errorf("%s: want a refusal at line 1, got %v\n%s", f, err, stderr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", f, err, stderr)
		}
	}
	out, _, err := run(t, "query", "--since", "100000h", "--limit", "5", "ka.user.name = alice-admin and ka.target.subresource = exec")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "alice-admin get from 127.0.0.1 -> 101") {
		t.Errorf("query output lacks alice's exec:\n%s", out)
	}
	// The hkerma CSV is refused, precisely, and the exit code says so.
	_, stderr, err := run(t, "ingest", "--format", "k8s-audit", filepath.Join(dir, "hkerma-kubernetes-event-dataset", "audit-logs.csv"))
	if err == nil || exitCode(err) != 1 || !strings.Contains(stderr, "line 1") {
		t.Errorf("CSV: err %v, stderr %s", err, stderr)
	}
}

func TestQueryRefusesBadInput(t *testing.T) {
	startTestServer(t)
	cases := [][]string{
		{"query", "proc.nam = bash"},
		{"query", "-o", "xml", "proc.name = bash"},
		{"query", "--since", "yesterday", "proc.name = bash"},
		{"scopes", "--by", "planet"},
		{"ingest", "--format", "csv", "x"},
	}
	for _, args := range cases {
		_, _, err := run(t, args...)
		if err == nil || exitCode(err) != 1 {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
	_, _, err := run(t, "query", "proc.nam = bash")
	if !strings.Contains(describe(err), "did you mean proc.name") || !strings.Contains(describe(err), "column 1") {
		t.Errorf("bad filter message: %s", describe(err))
	}
}

func TestFieldsReferenceIsCurrent(t *testing.T) {
	out, _, err := run(t, "fields", "-o", "markdown")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "fields.md"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(doc) {
		t.Error("docs/fields.md is stale: run 'make docs'")
	}
}

// writeSelfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetrail-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

func TestServerOverTLS(t *testing.T) {
	cert, key := writeSelfSigned(t)
	srv := startTestServer(t, func(o *serverOptions) { o.tlsCert, o.tlsKey = cert, key })
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("url %s", srv.url)
	}
	// Without the CA the certificate is refused; with it the query goes through.
	_, _, err := run(t, "query", "--server", srv.url, "--token", srv.token, "proc.name = sh")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate accepted: %v", err)
	}
	if _, _, err := run(t, "query", "--server", srv.url, "--token", srv.token, "--certificate-authority", cert, "proc.name = sh"); err != nil {
		t.Fatal(err)
	}
}
