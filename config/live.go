package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reload results: the values of the result label of
// svc_config_reloads_total and of [Report.Result].
const (
	// ResultApplied: at least one value changed and is in force.
	ResultApplied = "applied"
	// ResultUnchanged: nothing changed.
	ResultUnchanged = "unchanged"
	// ResultRejected: a new value failed its type or a validator, or a
	// file no longer parses; the previous value or contents stay in force.
	// Other changes of the same reload are applied.
	ResultRejected = "rejected"
	// ResultRestartRequired: a startup-only key ([Live.Static]) changed;
	// its previous value stays in force until the next start.
	ResultRestartRequired = "restart_required"
	// ResultFailed: a layer could not be read (an I/O error rather than
	// bad contents); its previous contents stay in force.
	ResultFailed = "failed"
)

// DefaultDebounce is how long file events must pause, by default, before
// a [Live] reloads: editors write a file in several steps.
const DefaultDebounce = 100 * time.Millisecond

// reloadTimeout bounds a reload started by a watch.
const reloadTimeout = 10 * time.Second

// LiveOptions configures a [Live]. The zero value logs nothing and
// registers no metrics.
type LiveOptions struct {
	// Known lists keys to consider even when only a non-enumerable layer
	// (the environment) sets them, as for [NewStore].
	Known []string
	// Logger receives one line per applied change (info) and per rejected
	// value, rejected file or restart-required change (warn). If nil,
	// nothing is logged.
	Logger *slog.Logger
	// Metrics, if not nil, is where svc_config_reloads_total{result} is
	// registered.
	Metrics prometheus.Registerer
	// Debounce is how long file events must pause before a reload, and
	// a fifth of the longest a burst of events may delay one. If zero,
	// DefaultDebounce.
	Debounce time.Duration
	// Schema, if not nil, declares the keys: their types and rules are
	// checked at start and at every reload, keys not declared Live are
	// startup-only, and a layer that sets an undeclared key (other than one
	// shared by every service, [Origin].Shared) fails the start and is
	// rejected at reload, naming the key, where it was set and the nearest
	// declared key. Known is then the schema's keys.
	Schema *Schema
	// Audit, if not nil, receives one line per applied change: a logger
	// that writes whatever the log level and marks its lines as audit
	// events (svc passes admin.AuditLogger). If nil, Logger.
	Audit *slog.Logger
}

// Live is a store that follows its layers as they change: a [Store] whose
// file and etcd layers are re-read by [Live.Reload], and, after
// [Live.Start], whenever a watched file changes or a [Notifier] layer
// announces a change.
//
// A reload never takes bad input: a value that fails its type ([NewVar]) or
// a validator ([Live.Validate]) is rejected, and so is a file that no
// longer parses; the previous value (value and layer) or the file's
// previous contents stay in force, the rejection is logged with the key,
// the value (redacted for secrets) and the layer, and counted in
// svc_config_reloads_total{result="rejected"}. A changed startup-only key
// ([Live.Static]) also keeps its previous value and is reported as needing
// a restart. [Live.Current] therefore always shows what is in force.
//
// Reads are lock-free: Current loads an atomic pointer, and [Var.Get] too.
// Reloads are serialized; subscribers ([Live.OnChange]) run in the
// reloading goroutine, after Current and every Var show the new values.
//
// A Live is safe for concurrent use. Start starts its goroutines; Close
// stops them.
type Live struct {
	layers   []Layer // lowest precedence first, nil layers dropped
	known    []string
	schema   *Schema // nil: nothing declared
	log      *slog.Logger
	audit    *slog.Logger
	reloads  *prometheus.CounterVec
	debounce time.Duration

	cur atomic.Pointer[Store] // the store in force

	mu       sync.Mutex // serializes reloads; guards the fields below
	sources  []Source   // each layer's contents in force, parallel to layers
	layerErr []string   // each layer's last load error, "" if it loaded
	held     map[string]pin
	last     Report   // the last reload's report: what is held back now
	static   []string // patterns of startup-only keys
	checks   []check
	groups   []groupCheck
	hooks    []hook
	vars     map[string][]binding // by exact key

	run     sync.Mutex // guards started and cancel
	started bool
	cancel  context.CancelFunc // stops the goroutines of Start; nil when none run
	wg      sync.WaitGroup     // counts the goroutines of Start
}

type check struct {
	pattern string
	fn      func(string) error
}

// groupCheck validates the keys under a prefix together.
type groupCheck struct {
	prefix string // "hello." ; matches keys starting with it
	fn     func(*Store) error
}

type hook struct {
	pattern string
	fn      func(Change)
}

// binding is a [Var] as its Live sees it.
type binding interface {
	check(Value) error
	set(v *Value)
}

// NewLive loads every layer once, in order (lowest precedence first, nil
// layers skipped), and returns the live store over them. A layer that fails
// to load (a malformed file) is an error: at startup, bad input is fatal.
// NewLive starts nothing; see [Live.Start]. An [*Overrides] layer is bound
// to the returned Live: its Put and Remove reload it.
func NewLive(o LiveOptions, layers ...Layer) (*Live, error) {
	l := &Live{
		known:    slices.Clone(o.Known),
		schema:   o.Schema,
		log:      o.Logger,
		audit:    o.Audit,
		debounce: o.Debounce,
		held:     map[string]pin{},
		vars:     map[string][]binding{},
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.audit == nil {
		l.audit = l.log
	}
	if l.debounce <= 0 {
		l.debounce = DefaultDebounce
	}
	if l.schema != nil {
		l.known = append(l.known, l.schema.Keys()...)
	}
	for _, ly := range layers {
		if ly == nil {
			continue
		}
		if ov, ok := ly.(*Overrides); ok {
			if err := ov.attach(l); err != nil {
				return nil, err
			}
		}
		l.layers = append(l.layers, ly)
	}
	l.sources = make([]Source, len(l.layers))
	l.layerErr = make([]string, len(l.layers))
	for i, ly := range l.layers {
		src, err := ly.Load(context.Background())
		if err == nil {
			src, err = l.schema.Admit(src)
		}
		if err != nil {
			return nil, err
		}
		l.sources[i] = src
	}
	st := NewStore(l.known, l.sources...).withSchema(l.schema)
	if l.schema != nil {
		if err := l.schema.CheckAll(st); err != nil {
			return nil, err
		}
	}
	l.cur.Store(st)

	l.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "svc_config_reloads_total",
		Help: "Configuration reloads by result: applied, unchanged, rejected, restart_required or failed.",
	}, []string{"result"})
	for _, r := range []string{ResultApplied, ResultUnchanged, ResultRejected, ResultRestartRequired, ResultFailed} {
		l.reloads.WithLabelValues(r)
	}
	if o.Metrics != nil {
		if err := o.Metrics.Register(l.reloads); err != nil {
			return nil, fmt.Errorf("config: register svc_config_reloads_total: %w", err)
		}
	}
	return l, nil
}

// Held returns what the last reload held back and is still held back: the
// values rejected (with why) and the startup-only changes that wait for a
// restart. Their JSON forms redact secrets. Held waits for a reload in
// progress.
func (l *Live) Held() (rejected []Rejection, restart []Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.last.Rejected), slices.Clone(l.last.RestartRequired)
}

// Current returns the store in force. It does not lock and does not
// allocate.
func (l *Live) Current() *Store { return l.cur.Load() }

// Static marks keys as startup-only: a reload that would change one keeps
// its previous value and reports it in [Report.RestartRequired] and in the
// log instead. A pattern ending in ".*" marks every key under it
// ("etcd.*"). Keys never change from a layer that does not change (the
// environment), so only the file and etcd layers are concerned.
func (l *Live) Static(patterns ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.static = append(l.static, patterns...)
}

// Validate adds a validator for the key or pattern ("feature.*"). A reload
// rejects a new value for which fn returns an error; the error should state
// the rule ("must be debug, info, warn or error"), the key, value and layer
// are added. Validators run under the reload lock: they must be quick and
// must not call back into l. They check new values from the next reload
// on, not the value in force.
func (l *Live) Validate(pattern string, fn func(value string) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checks = append(l.checks, check{pattern, fn})
}

// ValidateGroup adds a validator of the keys under prefix taken together
// ("hello." for hello.*): when a reload changes one of them, fn gets the
// store the reload would put in force; if it returns an error, every
// change under prefix is rejected and the previous values stay. fn runs
// under the reload lock, like the validators of [Live.Validate].
func (l *Live) ValidateGroup(prefix string, fn func(*Store) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.groups = append(l.groups, groupCheck{prefix, fn})
}

// OnChange calls fn after each reload that changes the value of the key,
// or of a key under a pattern ("feature.*"), once per key. A key that only
// moves from one layer to another with the same value does not count. fn
// runs in the reloading goroutine, under the reload lock, after Current
// and every [Var] show the new value, in key order. It may call Current
// and Var.Get but no other method of l (they would wait for the lock),
// and should be quick. A panic in fn is recovered and logged.
func (l *Live) OnChange(pattern string, fn func(Change)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hooks = append(l.hooks, hook{pattern, fn})
}

// match reports whether key is pattern, or under pattern "prefix.*".
func match(pattern, key string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok && strings.HasSuffix(p, ".") {
		return strings.HasPrefix(key, p)
	}
	return pattern == key
}

// Change is one key whose value or layer a reload changed, or would have
// changed ([Report.RestartRequired]). Its JSON form redacts secrets.
type Change struct {
	Key string
	Old *Value // nil: the key was not set
	New *Value // nil: the key is no longer set
}

// Rejection is a value, or a layer's new contents, that a reload did not
// take. Its JSON form redacts secrets.
type Rejection struct {
	Key   string // the key; "" when a whole layer was rejected
	Value string // the rejected value; "" for a layer
	Layer string // the layer the rejected value or contents came from
	Err   error  // why: a [*TypeError], a [*RuleError] or a load error
}

// Report says what one reload did. Its JSON form is what
// POST /admin/config/reload answers; it redacts secrets.
type Report struct {
	// Result is one of ResultApplied, ResultUnchanged, ResultRejected,
	// ResultRestartRequired and ResultFailed: the worst that happened
	// (failed, then rejected, restart required, applied).
	Result string `json:"result"`
	// Changed lists the keys whose new value (or layer) is now in force.
	Changed []Change `json:"changed"`
	// Rejected lists every value and layer held back after this reload,
	// including those an earlier reload already rejected and that are still
	// there (those are not logged or counted again).
	Rejected []Rejection `json:"rejected"`
	// RestartRequired lists every startup-only key whose new value waits
	// for the next start, including those reported before.
	RestartRequired []Change `json:"restart_required"`
}

type displayValue struct {
	Value string `json:"value"`
	Layer string `json:"layer"`
}

func display(v *Value) *displayValue {
	if v == nil {
		return nil
	}
	return &displayValue{Value: v.Display(), Layer: v.Layer}
}

// MarshalJSON encodes c as {"key", "old", "new"}, each value as
// {"value", "layer"} or null, secrets redacted.
func (c Change) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key string        `json:"key"`
		Old *displayValue `json:"old"`
		New *displayValue `json:"new"`
	}{c.Key, display(c.Old), display(c.New)})
}

// MarshalJSON encodes r as {"key", "value", "layer", "error"}, the value
// redacted for secrets.
func (r Rejection) MarshalJSON() ([]byte, error) {
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	return json.Marshal(struct {
		Key   string `json:"key,omitempty"`
		Value string `json:"value,omitempty"`
		Layer string `json:"layer"`
		Error string `json:"error"`
	}{r.Key, Redact(r.Key, r.Value), r.Layer, msg})
}

func valuePtr(v Value, ok bool) *Value {
	if !ok {
		return nil
	}
	return &v
}

// Reload reads every layer again and puts the result in force, except for
// what it rejects or holds back for a restart (see [Live]). A layer that
// fails to load keeps its previous contents; when it failed for a reason
// other than malformed contents, Reload also returns the error, and the
// report (which describes what was applied anyway) has ResultFailed.
// Reloads are serialized.
func (l *Live) Reload(ctx context.Context) (Report, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("config: reload: %w", err)
	}
	rep := Report{Changed: []Change{}, Rejected: []Rejection{}, RestartRequired: []Change{}}
	var failed []error
	rejected, restart := false, false // newly, in this reload

	sources := slices.Clone(l.sources)
	for i, ly := range l.layers {
		src, err := ly.Load(ctx)
		if err == nil {
			src, err = l.schema.Admit(src)
		}
		if err == nil {
			l.warnFellBack(ly, sources[i], src)
			if l.layerErr[i] != "" {
				l.log.Info("config: layer readable again", "layer", ly.Name())
				l.layerErr[i] = ""
			}
			sources[i] = src
			continue
		}
		rep.Rejected = append(rep.Rejected, Rejection{Layer: ly.Name(), Err: err})
		var syn *SyntaxError
		var und *UndeclaredError
		content := errors.As(err, &syn) || errors.As(err, &und)
		if !content {
			failed = append(failed, err)
		}
		if l.layerErr[i] != err.Error() {
			l.layerErr[i] = err.Error()
			rejected = rejected || content
			l.log.Warn("config: rejected the new contents of a layer; its previous contents stay in force",
				"layer", ly.Name(), "err", err)
		}
	}

	old := l.cur.Load()
	cand := NewStore(l.known, sources...).withSchema(l.schema)
	pins := map[string]pin{}
	held := map[string]pin{}
	var applied []Change // value changes, for Vars and hooks
	for _, k := range union(old.keys, cand.keys) {
		ov, ook := old.Lookup(k)
		nv, nok := cand.Lookup(k)
		if ook == nok && ov == nv {
			continue
		}
		c := Change{Key: k, Old: valuePtr(ov, ook), New: valuePtr(nv, nok)}
		if ook == nok && ov.Value == nv.Value { // same value from another layer
			rep.Changed = append(rep.Changed, c)
			continue
		}
		if nok {
			if err := l.checkLocked(nv); err != nil {
				pins[k] = pin{ov, ook}
				held[k] = pin{nv, nok}
				rep.Rejected = append(rep.Rejected, Rejection{Key: k, Value: nv.Value, Layer: nv.Layer, Err: err})
				if l.held[k] != held[k] {
					rejected = true
					l.log.Warn("config: rejected a new value; the previous value stays in force",
						"key", k, "value", shown(nv.Display()), "layer", nv.Layer,
						"in_force", displayOf(ov, ook), "in_force_layer", ov.Layer, "err", err)
				}
				continue
			}
		}
		if l.isStatic(k) {
			pins[k] = pin{ov, ook}
			held[k] = pin{nv, nok}
			rep.RestartRequired = append(rep.RestartRequired, c)
			if l.held[k] != held[k] {
				restart = true
				l.log.Warn("config: a startup-only key changed; the new value takes effect at the next start",
					"key", k, "value", displayOf(nv, nok), "layer", nv.Layer,
					"in_force", displayOf(ov, ook), "in_force_layer", ov.Layer)
			}
			continue
		}
		rep.Changed = append(rep.Changed, c)
		applied = append(applied, c)
	}
	applied = l.checkGroups(cand, old, pins, held, applied, &rep, &rejected)

	l.cur.Store(cand.withPins(pins))
	l.sources = sources
	l.held = held
	for _, c := range applied {
		for _, b := range l.vars[c.Key] {
			b.set(c.New)
		}
		l.audit.Info("config: value changed", "key", c.Key,
			"value", displayOf(deref(c.New)), "layer", layerOf(c.New),
			"previous", displayOf(deref(c.Old)), "previous_layer", layerOf(c.Old))
	}
	for _, c := range applied {
		for _, h := range l.hooks {
			if match(h.pattern, c.Key) {
				l.call(h.fn, c)
			}
		}
	}

	switch {
	case len(failed) > 0:
		rep.Result = ResultFailed
	case rejected:
		rep.Result = ResultRejected
	case restart:
		rep.Result = ResultRestartRequired
	case len(rep.Changed) > 0:
		rep.Result = ResultApplied
	default:
		rep.Result = ResultUnchanged
	}
	l.last = rep
	l.reloads.WithLabelValues(rep.Result).Inc()
	if len(failed) > 0 {
		return rep, fmt.Errorf("config: reload: %w", errors.Join(failed...))
	}
	return rep, nil
}

// checkGroups runs the group validators whose prefix an applied change
// falls under, on the store the reload would put in force; a failing group
// has all its changes rejected (pinned to their previous values). It
// returns the changes still applied.
func (l *Live) checkGroups(cand, old *Store, pins, held map[string]pin, applied []Change, rep *Report, rejected *bool) []Change {
	for _, g := range l.groups {
		if !slices.ContainsFunc(applied, func(c Change) bool { return strings.HasPrefix(c.Key, g.prefix) }) {
			continue
		}
		err := g.fn(cand.withPins(pins))
		if err == nil {
			continue
		}
		kept := applied[:0]
		for _, c := range applied {
			if !strings.HasPrefix(c.Key, g.prefix) {
				kept = append(kept, c)
				continue
			}
			ov, ook := old.Lookup(c.Key)
			nv, nok := deref(c.New)
			pins[c.Key] = pin{ov, ook}
			held[c.Key] = pin{nv, nok}
			rep.Rejected = append(rep.Rejected, Rejection{Key: c.Key, Value: nv.Value, Layer: nv.Layer, Err: err})
			rep.Changed = slices.DeleteFunc(rep.Changed, func(x Change) bool { return x.Key == c.Key })
			if l.held[c.Key] != held[c.Key] {
				*rejected = true
				l.log.Warn("config: rejected a new value; the previous value stays in force",
					"key", c.Key, "value", shown(nv.Display()), "layer", nv.Layer, "err", err)
			}
		}
		applied = kept
	}
	return applied
}

// warnFellBack logs, when a file layer that set keys is gone, the keys
// that now fall back to lower layers.
func (l *Live) warnFellBack(ly Layer, before, now Source) {
	f, ok := ly.(*File)
	if !ok || before == nil || now != nil {
		return
	}
	if keys := before.Keys(); len(keys) > 0 {
		l.log.Warn("config: a file was removed; its keys fall back to lower layers",
			"file", f.Path(), "keys", keys)
	}
}

// checkLocked runs the schema, the validators and Var parsers of v's key.
func (l *Live) checkLocked(v Value) error {
	if err := l.schema.Check(v); err != nil {
		return err
	}
	for _, c := range l.checks {
		if match(c.pattern, v.Key) {
			if err := c.fn(v.Value); err != nil {
				return valueError(v, err)
			}
		}
	}
	for _, b := range l.vars[v.Key] {
		if err := b.check(v); err != nil {
			return err
		}
	}
	return nil
}

// valueError turns a validator's or parser's error into a [*TypeError] or
// [*RuleError] naming v's key, value and layer.
func valueError(v Value, err error) error {
	var te *TypeError
	var re *RuleError
	if errors.As(err, &te) || errors.As(err, &re) {
		return err
	}
	var we *wantError
	if errors.As(err, &we) {
		return &TypeError{Value: v, Want: we.want}
	}
	return v.Invalid(err.Error())
}

func (l *Live) isStatic(key string) bool {
	if d, ok := l.schema.Lookup(key); ok && !d.Live {
		return true
	}
	for _, p := range l.static {
		if match(p, key) {
			return true
		}
	}
	return false
}

// call runs a subscriber, recovering a panic: a subscriber's bug must not
// take the service down with a reload.
func (l *Live) call(fn func(Change), c Change) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("config: OnChange subscriber panicked", "key", c.Key, "panic", r)
		}
	}()
	fn(c)
}

func union(a, b []string) []string {
	set := make(map[string]struct{}, len(a)+len(b))
	for _, k := range a {
		set[k] = struct{}{}
	}
	for _, k := range b {
		set[k] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}

func deref(v *Value) (Value, bool) {
	if v == nil {
		return Value{}, false
	}
	return *v, true
}

func layerOf(v *Value) string {
	if v == nil {
		return ""
	}
	return v.Layer
}

// displayOf returns the displayable value, or "(not set)".
func displayOf(v Value, ok bool) string {
	if !ok {
		return "(not set)"
	}
	return shown(v.Display())
}

// maxShown bounds a value in a log line: one huge value must not make a
// huge line.
const maxShown = 256

// shown returns s, cut to maxShown bytes with a note of its length.
func shown(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", strings.ToValidUTF8(s[:maxShown], ""), len(s))
}
