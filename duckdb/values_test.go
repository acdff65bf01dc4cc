package duckdb

import (
	"context"
	"reflect"
	"testing"

	"github.com/kubetrail/kubetrail"
)

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
		{kubetrail.ValuesQuery{Field: "proc.name", Filter: billing, Prefix: "c"}, []kubetrail.ValueCount{{"curl", 2}}},
		{kubetrail.ValuesQuery{Field: "proc.name", Limit: 2, Filter: kubetrail.Comparison{Field: "evt.category", Op: kubetrail.OpEq, Values: []any{"process"}}},
			[]kubetrail.ValueCount{{"bash", 1}, {"curl", 1}}},
		{kubetrail.ValuesQuery{Field: "fd.sport", Prefix: "54"}, []kubetrail.ValueCount{{int64(5432), 1}}},
		{kubetrail.ValuesQuery{Field: "ka.user.groups", Prefix: "dev"}, []kubetrail.ValueCount{{"devs", 1}}},
		{kubetrail.ValuesQuery{Field: "net.peer.kind"}, []kubetrail.ValueCount{{"pod", 1}, {"unknown", 1}}},
		{kubetrail.ValuesQuery{Field: "fd.sip", Prefix: "185", Filter: billing}, []kubetrail.ValueCount{{"185.220.101.47", 1}}},
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
