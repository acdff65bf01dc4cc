package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
)

// The agent ships through its spool: a server that goes away mid-stream and comes
// back on the same data dir ends up with every event exactly once.
func TestAgentSurvivesServerRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run as root to test the agent")
		}
		t.Skip("the agent needs root")
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBETRAIL_ADMIN_TOKEN", "agent-restart-token-0123456789")
	// A fixed port, so the restarted server is where the agent sends.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dataDir := t.TempDir()
	opts := &serverOptions{listen: addr, dataDir: dataDir, cluster: "test", retainEach: 1 << 62}
	start := func() (*runningServer, context.CancelFunc, chan error) {
		srv, err := startServer(context.Background(), opts, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.wait(ctx) }()
		return srv, cancel, done
	}
	srv, stop, stopped := start()
	client := kthttp.NewClient(srv.url, srv.token)

	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- runAgent(agentCtx, agentOptions{client: client, node: "node-r", cluster: "test",
			spoolDir: filepath.Join(t.TempDir(), "spool"), spoolSize: 64 << 20, listen: "127.0.0.1:0", batch: 100, interval: 50 * time.Millisecond, excludes: []string{"/proc", "/sys", "/dev"}},
			slog.New(slog.DiscardHandler))
	}()
	marker := fmt.Sprintf("kubetrail-restart-%d", time.Now().UnixNano())
	run := func(phase string) {
		for i := 0; i < 5; i++ {
			if err := exec.Command("/bin/echo", marker, phase, fmt.Sprint(i)).Run(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait until the sensor records and the agent ships: loading it takes longer
	// on a busy machine than any fixed pause would allow.
	ready := fmt.Sprintf("kubetrail-ready-%d", time.Now().UnixNano())
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the agent's events never reached the server")
		}
		exec.Command("/bin/echo", ready).Run()
		page, err := client.Search(context.Background(), kthttp.Query{Filter: "evt.type = execve and proc.args = " + ready, Limit: 1})
		if err == nil && len(page.Events) > 0 {
			break
		}
	}
	run("before")
	time.Sleep(500 * time.Millisecond)
	stop()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	run("during") // the server is down: these wait in the spool
	time.Sleep(300 * time.Millisecond)
	srv, stop, stopped = start()
	defer func() { stop(); <-stopped }()
	run("after")

	filter := fmt.Sprintf("evt.type = execve and proc.args startswith %s", marker)
	var events []kubetrail.Event
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		page, err := client.Search(context.Background(), kthttp.Query{Filter: filter, Limit: 1000})
		if err != nil {
			continue
		}
		if events = page.Events; len(events) >= 15 {
			break
		}
	}
	stopAgent()
	if err := <-agentDone; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range events {
		seen[strings.Join(e.Process.Argv[2:], " ")]++
	}
	for _, phase := range []string{"before", "during", "after"} {
		for i := 0; i < 5; i++ {
			if n := seen[fmt.Sprintf("%s %d", phase, i)]; n != 1 {
				t.Errorf("echo %s %d stored %d times, want once", phase, i, n)
			}
		}
	}
}
