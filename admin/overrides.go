package admin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/config"
)

// MaxOverrideValue bounds the body of PUT /admin/config/{key}: the value.
const MaxOverrideValue = 64 << 10

// overrideAnswer is the answer of PUT and DELETE /admin/config/{key}
// (what svcctl config set and unset print). Values are redacted for
// secrets.
type overrideAnswer struct {
	Key string `json:"key"`
	// Value is, after PUT, the override's value (waiting for a restart
	// when RestartRequired); after DELETE, the value in force. Null: not
	// set.
	Value *string `json:"value"`
	Layer string  `json:"layer,omitempty"` // Value's layer
	// Previous is the value in force before the request.
	Previous *layeredValue `json:"previous"`
	// Expires is when the override ends by itself (RFC 3339); absent
	// for an override without ?for= and after DELETE.
	Expires         string `json:"expires,omitempty"`
	Result          string `json:"result"` // applied, unchanged or restart_required
	RestartRequired bool   `json:"restart_required"`
}

type layeredValue struct {
	Value string `json:"value"`
	Layer string `json:"layer"`
}

func shownValue(v *config.Value) *layeredValue {
	if v == nil {
		return nil
	}
	return &layeredValue{Value: v.Display(), Layer: v.Layer}
}

// configEntry is one key of GET /admin/config. Expires is set for a key
// in force from an override set with ?for=.
type configEntry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Layer   string `json:"layer"`
	Expires string `json:"expires,omitempty"`
}

// overrideEntry is one override in GET /admin/config's "overrides": in
// force, or held for a restart (a startup-only key).
type overrideEntry struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Expires string `json:"expires,omitempty"`
	InForce bool   `json:"in_force"`
}

// configView is the answer of GET /admin/config: every key in force and,
// when overrides are served, the overrides.
func (s *Server) configView() map[string]any {
	vals := s.p.Config()
	keys := make([]configEntry, len(vals))
	inForce := map[string]bool{}
	for i, v := range vals {
		keys[i] = configEntry{Key: v.Key, Value: v.Display(), Layer: v.Layer}
		if s.p.Overrides != nil && v.Layer == s.p.Overrides.Name() {
			exp, _ := s.p.Overrides.Expiry(v.Key)
			keys[i].Expires = timeText(exp)
			inForce[v.Key] = true
		}
	}
	view := map[string]any{"keys": keys}
	if s.p.Held != nil {
		// Values a reload refused, and startup-only changes waiting for
		// a restart: the values in force above are the previous ones.
		rejected, restart := s.p.Held()
		view["rejected"] = nonNil(rejected)
		view["restart_required"] = nonNil(restart)
	}
	if s.p.Overrides != nil {
		ovs := []overrideEntry{}
		for _, o := range s.p.Overrides.List() {
			ovs = append(ovs, overrideEntry{Key: o.Value.Key, Value: o.Value.Display(), Expires: timeText(o.Expires), InForce: inForce[o.Value.Key]})
		}
		view["overrides"] = ovs
	}
	return view
}

// timeText is t in RFC 3339, UTC, or "" for the zero time.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// overrideKey is the {key} of the request, unescaped.
func overrideKey(r *http.Request) string {
	raw := chi.URLParam(r, "key")
	if k, err := url.PathUnescape(raw); err == nil {
		return k
	}
	return raw
}

// putOverride serves PUT /admin/config/{key}[?for=D]: the body is the
// value. 200 when it is in force, 202 for a startup-only key (held until
// a restart, which drops it), 400 with the reason when refused.
func (s *Server) putOverride(w http.ResponseWriter, r *http.Request) {
	key := overrideKey(r)
	auditAttrs(w, slog.String("key", key))
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxOverrideValue+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: reading the value: %v", err))
		return
	}
	if len(body) > MaxOverrideValue {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("admin: a value is at most %d bytes", MaxOverrideValue))
		return
	}
	var ttl time.Duration
	if f := r.URL.Query().Get("for"); f != "" {
		if ttl, err = time.ParseDuration(f); err != nil || ttl <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: for=%q: want a positive duration such as 5m", f))
			return
		}
		auditAttrs(w, slog.String("for", ttl.String()))
	}
	res, err := s.p.Overrides.Put(r.Context(), key, string(body), ttl)
	if err != nil {
		s.overrideError(w, err)
		return
	}
	s.answerOverride(w, res)
}

// deleteOverride serves DELETE /admin/config/{key}: the key's value comes
// from the other layers again. 404 when the key has no override.
func (s *Server) deleteOverride(w http.ResponseWriter, r *http.Request) {
	key := overrideKey(r)
	auditAttrs(w, slog.String("key", key))
	res, err := s.p.Overrides.Remove(r.Context(), key)
	if errors.Is(err, config.ErrNoOverride) {
		auditAttrs(w, slog.String("err", err.Error()))
		writeError(w, http.StatusNotFound, fmt.Sprintf("admin: %s has no override; PUT /admin/config/%s sets one", key, key))
		return
	}
	if err != nil {
		s.overrideError(w, err)
		return
	}
	s.answerOverride(w, res)
}

func (s *Server) overrideError(w http.ResponseWriter, err error) {
	var re *config.RefusedError
	code := http.StatusInternalServerError
	if errors.As(err, &re) {
		code = http.StatusBadRequest
	}
	auditAttrs(w, slog.String("err", err.Error()))
	writeError(w, code, err.Error())
}

func (s *Server) answerOverride(w http.ResponseWriter, res config.OverrideResult) {
	a := overrideAnswer{Key: res.Key, Previous: shownValue(res.Previous), Expires: timeText(res.Expires), Result: res.Result}
	if res.Value != nil {
		v := res.Value.Display()
		a.Value, a.Layer = &v, res.Value.Layer
	}
	code := http.StatusOK
	if res.Result == config.ResultRestartRequired {
		code, a.RestartRequired = http.StatusAccepted, true
	}
	attrs := []slog.Attr{slog.String("result", res.Result)}
	if a.Value != nil {
		attrs = append(attrs, slog.String("value", *a.Value), slog.String("layer", a.Layer))
	}
	if a.Previous != nil {
		attrs = append(attrs, slog.String("previous", a.Previous.Value), slog.String("previous_layer", a.Previous.Layer))
	}
	if a.Expires != "" {
		attrs = append(attrs, slog.String("expires", a.Expires))
	}
	auditAttrs(w, attrs...)
	writeJSON(w, code, a)
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
