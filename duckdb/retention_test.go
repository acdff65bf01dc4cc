package duckdb

import (
	"context"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

func TestRetentionPerCategory(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	now := time.Now().UTC()
	old := procEvent("s1", 1, now.Add(-40*24*time.Hour), "billing", "p", "sh", "sh")
	oldConn := procEvent("s1", 2, now.Add(-40*24*time.Hour), "billing", "p", "curl", "curl")
	oldConn.Category, oldConn.Type = kubetrail.CategoryNetwork, "connect"
	oldConn.Network = kubetrail.Network{L4Proto: "tcp", Direction: "outbound", ClientIP: "10.0.0.1", ServerIP: "10.0.0.2", ServerPort: 80}
	fresh := procEvent("s1", 3, now.Add(-time.Hour), "billing", "p", "id", "id")
	if _, err := s.Write(ctx, []kubetrail.Event{old, oldConn, fresh}); err != nil {
		t.Fatal(err)
	}
	deleted, err := kubetrail.DefaultRetention().Enforce(ctx, s, now)
	if err != nil {
		t.Fatal(err)
	}
	// Connections are kept 30 days, commands 90: only the old connection goes.
	if deleted[kubetrail.CategoryNetwork] != 1 || deleted[kubetrail.CategoryProcess] != 0 {
		t.Fatalf("deleted %v", deleted)
	}
	st, _ := s.Stats(ctx)
	if st.Events[kubetrail.CategoryProcess] != 2 || st.Events[kubetrail.CategoryNetwork] != 0 {
		t.Fatalf("left %v", st.Events)
	}
}
