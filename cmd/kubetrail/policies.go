package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubetrail/kubetrail"
	kthttp "github.com/kubetrail/kubetrail/http"
	"github.com/kubetrail/kubetrail/notify"
	"github.com/kubetrail/kubetrail/policy"
)

// policyService is the server's policies: the evaluator the ingest pipeline runs,
// the dispatcher that delivers what it raises, and reloading both from the same
// files. A reload that fails leaves what is in force untouched.
type policyService struct {
	opts      policy.Options
	evaluator *policy.Evaluator
	metrics   *notify.Metrics // shared by the dispatchers that replace each other
	log       *slog.Logger

	mu         sync.Mutex // serialises reloads
	dispatcher atomic.Pointer[notify.Dispatcher]
}

func newPolicyService(opts policy.Options, reg prometheus.Registerer, log *slog.Logger) (*policyService, error) {
	set, err := policy.Load(opts)
	if err != nil {
		return nil, err
	}
	ev, err := policy.NewEvaluator(set, reg)
	if err != nil {
		return nil, err
	}
	metrics, err := notify.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	p := &policyService{opts: opts, evaluator: ev, metrics: metrics, log: log}
	d, err := p.newDispatcher(set)
	if err != nil {
		return nil, err
	}
	p.dispatcher.Store(d)
	return p, nil
}

func (p *policyService) newDispatcher(set *policy.Set) (*notify.Dispatcher, error) {
	actions, err := notify.NewAll(set.Actions)
	if err != nil {
		return nil, err
	}
	return notify.NewDispatcher(actions, notify.Options{Metrics: p.metrics, Logger: p.log,
		Route: func(e *kubetrail.Event) []string { return p.actionsOf(e.Alert.Policy) }})
}

// actionsOf names the actions of a policy in force.
func (p *policyService) actionsOf(name string) []string {
	for _, pol := range p.evaluator.Set().Policies {
		if pol.Name == name {
			return pol.Actions
		}
	}
	return nil
}

// Evaluate raises policy events (ingest.Policies).
func (p *policyService) Evaluate(events []kubetrail.Event) []kubetrail.Event {
	return p.evaluator.Evaluate(events)
}

// Dispatch hands stored policy events to their actions (ingest.Notifier).
func (p *policyService) Dispatch(events []kubetrail.Event) bool {
	return p.dispatcher.Load().Dispatch(events)
}

func (p *policyService) Current() kthttp.PolicyState { return state(p.evaluator.Set()) }

func state(s *policy.Set) kthttp.PolicyState {
	return kthttp.PolicyState{Policies: s.Policies, Rules: s.Rules, Files: s.Files, Warnings: s.Warnings}
}

// Reload reads the rule files and the policy file again. Everything new is
// built before anything in force is replaced, so that a failure changes nothing.
func (p *policyService) Reload(_ context.Context) (kthttp.PolicyState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	set, err := policy.Load(p.opts)
	var d *notify.Dispatcher
	if err == nil && !reflect.DeepEqual(p.evaluator.Set().Actions, set.Actions) {
		d, err = p.newDispatcher(set)
	}
	if err != nil {
		p.log.Error("reload policies: kept those in force", "err", err)
		return kthttp.PolicyState{}, err
	}
	p.evaluator.Swap(set)
	if d != nil {
		// What the previous actions have queued is still delivered.
		prev := p.dispatcher.Swap(d)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			prev.Close(ctx)
		}()
	}
	return state(set), nil
}

// Close delivers what is queued, until ctx ends.
func (p *policyService) Close(ctx context.Context) error { return p.dispatcher.Load().Close(ctx) }

// reloadOnHangup reloads the policies on each SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, p *policyService) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// A failure is logged by Reload, and what is in force stays.
			if st, err := p.Reload(ctx); err == nil {
				p.log.Info("policies reloaded", "policies", len(st.Policies), "files", len(st.Files))
			}
		}
	}
}
