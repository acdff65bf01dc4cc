package duckdb

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/kubetrail/kubetrail"
)

func vc(v any, n int64) kubetrail.ValueCount { return kubetrail.ValueCount{Value: v, Count: n} }

// Values lists a field's commonest values among matching events, for
// completion: from the events table, a dimension, a list or a number.
func TestValues(t *testing.T) {
	s, _ := fixture(t)
	ctx := context.Background()
	billing := kubetrail.Comparison{Field: "k8s.ns.name", Op: kubetrail.OpEq, Values: []any{"billing"}}
	tests := []struct {
		q    kubetrail.ValuesQuery
		want []kubetrail.ValueCount
	}{
		{kubetrail.ValuesQuery{Field: "proc.name", Filter: billing, Prefix: "c"}, []kubetrail.ValueCount{vc("curl", 2)}},
		{kubetrail.ValuesQuery{Field: "proc.name", Limit: 2, Filter: kubetrail.Comparison{Field: "evt.category", Op: kubetrail.OpEq, Values: []any{"process"}}},
			[]kubetrail.ValueCount{vc("bash", 1), vc("curl", 1)}},
		{kubetrail.ValuesQuery{Field: "fd.sport", Prefix: "54"}, []kubetrail.ValueCount{vc(int64(5432), 1)}},
		{kubetrail.ValuesQuery{Field: "ka.user.groups", Prefix: "dev"}, []kubetrail.ValueCount{vc("devs", 2)}}, // the request and the policy event it raised
		{kubetrail.ValuesQuery{Field: "net.peer.kind"}, []kubetrail.ValueCount{vc("pod", 1), vc("unknown", 1)}},
		{kubetrail.ValuesQuery{Field: "fd.sip", Prefix: "185", Filter: billing}, []kubetrail.ValueCount{vc("185.220.101.47", 1)}},
	}
	for _, tc := range tests {
		got, err := s.Values(ctx, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, got, tc.want)
		}
	}
	for _, field := range []string{"proc.nmae", "evt.time", "evt.id"} {
		if _, err := s.Values(ctx, kubetrail.ValuesQuery{Field: field}); kubetrail.ErrorCode(err) != kubetrail.EINVALID {
			t.Errorf("%s: %v, want invalid", field, err)
		}
	}
}

// A search looks at the newest hour first and at the rest of the window only
// when that hour has too few events; pages read the same either way.
func TestSearchAcrossTheNewestHour(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	var batch []kubetrail.Event
	for i := range 10 {
		// Two events per half hour over five hours, the newest at t0.
		at := t0.Add(-time.Duration(i) * 30 * time.Minute)
		batch = append([]kubetrail.Event{procEvent("s1", uint64(10-i), at, "billing", "p", "sh", "sh")}, batch...)
	}
	if _, err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, win := range []kubetrail.Window{{}, {From: t0.Add(-24 * time.Hour), To: t0.Add(time.Minute)}, {To: t0.Add(-time.Hour)}} {
		var seqs []uint64
		q := kubetrail.SearchQuery{Window: win, Limit: 3}
		for {
			page, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Events {
				seqs = append(seqs, e.Seq)
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		want := []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
		if !win.To.IsZero() && win.To.Before(t0) {
			want = want[3:] // t0-1h and later are outside
		}
		if !reflect.DeepEqual(seqs, want) {
			t.Errorf("window %+v: %v, want %v", win, seqs, want)
		}
	}
}
