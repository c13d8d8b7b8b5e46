package tracing

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// The ids and times of the spans of the round-trip tests.
var (
	tid1 = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	tid2 = trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	sid1 = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	sid2 = trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
	sid3 = trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1}
	t0   = time.Date(2026, 11, 28, 7, 1, 14, 421_000_001, time.UTC)
)

func ns(t time.Time) uint64 { return uint64(t.UnixNano()) }

// sc is a span context; state is a W3C tracestate ("" for none).
func sc(t *testing.T, tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags, remote bool, state string) trace.SpanContext {
	t.Helper()
	ts, err := trace.ParseTraceState(state)
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: remote, TraceState: ts})
}

// stub is a minimal span; the test cases change what they test.
func stub(t *testing.T, name string) tracetest.SpanStub {
	return tracetest.SpanStub{
		Name:        name,
		SpanContext: sc(t, tid1, sid1, trace.FlagsSampled, false, ""),
		SpanKind:    trace.SpanKindInternal,
		StartTime:   t0,
		EndTime:     t0.Add(1500 * time.Millisecond),
	}
}

// pbSpan is stub's span as OTLP has it.
func pbSpan(name string) *tracepb.Span {
	return &tracepb.Span{
		TraceId:           tid1[:],
		SpanId:            sid1[:],
		Name:              name,
		Kind:              tracepb.Span_SPAN_KIND_INTERNAL,
		StartTimeUnixNano: ns(t0),
		EndTimeUnixNano:   ns(t0.Add(1500 * time.Millisecond)),
		Status:            &tracepb.Status{},
		Flags:             0x101, // sampled, is-remote known, not remote
	}
}

// single is the request of spans with neither resource nor scope.
func single(spans ...*tracepb.Span) *collectorpb.ExportTraceServiceRequest {
	return &collectorpb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}
func sv(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}
func bv(b bool) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: b}}
}
func iv(i int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
}
func dv(f float64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: f}}
}
func av(vs ...*commonpb.AnyValue) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
}

// TestEncodeRoundTrip encodes spans and decodes the request with the
// generated OTLP packages: what a collector reads must be what the SDK
// recorded, field by field.
func TestEncodeRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 200)    // a two-byte length
	huge := strings.Repeat("y", 70_000) // a three-byte length, spans past 64 KiB
	schema := "https://opentelemetry.io/schemas/1.26.0"
	resA := resource.NewWithAttributes(schema, attribute.String("service.name", "a"), attribute.Int("pid", 7))
	resB := resource.NewSchemaless(attribute.String("service.name", "b"))
	resAb := resource.NewSchemaless(attribute.String("service.name", "a"), attribute.Int("pid", 7)) // resA but its schema
	pbResA := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("pid", iv(7)), kv("service.name", sv("a"))}}
	pbResB := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", sv("b"))}}
	scope1 := instrumentation.Scope{Name: "otelhttp", Version: "0.70.0", SchemaURL: schema, Attributes: attribute.NewSet(attribute.Bool("z", true), attribute.String("a", "b"))}
	scope2 := instrumentation.Scope{Name: "mine"}
	pbScope1 := &commonpb.InstrumentationScope{Name: "otelhttp", Version: "0.70.0", Attributes: []*commonpb.KeyValue{kv("a", sv("b")), kv("z", bv(true))}}
	pbScope2 := &commonpb.InstrumentationScope{Name: "mine"}

	for _, tc := range []struct {
		name  string
		spans func(t *testing.T) []tracetest.SpanStub
		want  *collectorpb.ExportTraceServiceRequest
	}{{
		name:  "no spans",
		spans: func(*testing.T) []tracetest.SpanStub { return nil },
		want:  &collectorpb.ExportTraceServiceRequest{},
	}, {
		name:  "minimal span",
		spans: func(t *testing.T) []tracetest.SpanStub { return []tracetest.SpanStub{stub(t, "work")} },
		want:  single(pbSpan("work")),
	}, {
		name: "every attribute type",
		spans: func(t *testing.T) []tracetest.SpanStub {
			s := stub(t, "attrs")
			s.Attributes = []attribute.KeyValue{
				attribute.Bool("bool", true),
				attribute.Bool("bool.false", false),
				attribute.Int64("int", -5),
				attribute.Int64("int.zero", 0),
				attribute.Int64("int.max", math.MaxInt64),
				attribute.Float64("float", 1.5),
				attribute.Float64("float.zero", 0),
				attribute.Float64("float.nan", math.Inf(-1)),
				attribute.String("string", "héllo"),
				attribute.String("string.empty", ""),
				attribute.String("string.long", long),
				attribute.String("string.huge", huge),
				attribute.String("string.invalid-utf8", "a\xffb"),
				attribute.BoolSlice("bools", []bool{true, false}),
				attribute.Int64Slice("ints", []int64{0, 1, -1}),
				attribute.Float64Slice("floats", []float64{0, 2.25}),
				attribute.StringSlice("strings", []string{"", "x", long}),
				attribute.StringSlice("strings.empty", []string{}),
				attribute.ByteSlice("bytes", []byte{0, 1, 0xff}),
				attribute.ByteSlice("bytes.empty", []byte{}),
				attribute.Slice("slice", attribute.IntValue(1), attribute.StringValue("two"), attribute.SliceValue(attribute.BoolValue(false))),
				attribute.Map("map", attribute.String("k", "v"), attribute.Map("inner", attribute.Float64("f", 0.5))),
				{Key: "empty"},
			}
			return []tracetest.SpanStub{s}
		},
		want: func() *collectorpb.ExportTraceServiceRequest {
			s := pbSpan("attrs")
			s.Attributes = []*commonpb.KeyValue{
				kv("bool", bv(true)),
				kv("bool.false", bv(false)),
				kv("int", iv(-5)),
				kv("int.zero", iv(0)),
				kv("int.max", iv(math.MaxInt64)),
				kv("float", dv(1.5)),
				kv("float.zero", dv(0)),
				kv("float.nan", dv(math.Inf(-1))),
				kv("string", sv("héllo")),
				kv("string.empty", sv("")),
				kv("string.long", sv(long)),
				kv("string.huge", sv(huge)),
				kv("string.invalid-utf8", sv("a\uFFFDb")),
				kv("bools", av(bv(true), bv(false))),
				kv("ints", av(iv(0), iv(1), iv(-1))),
				kv("floats", av(dv(0), dv(2.25))),
				kv("strings", av(sv(""), sv("x"), sv(long))),
				kv("strings.empty", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}}),
				kv("bytes", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1, 0xff}}}),
				kv("bytes.empty", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{}}}),
				kv("slice", av(iv(1), sv("two"), av(bv(false)))),
				kv("map", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
					// attribute.Map sorts its keys
					kv("inner", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("f", dv(0.5))}}}}),
					kv("k", sv("v")),
				}}}}),
				kv("empty", &commonpb.AnyValue{}),
			}
			return single(s)
		}(),
	}, {
		name: "kinds, trace state, dropped counts, times",
		spans: func(t *testing.T) []tracetest.SpanStub {
			var out []tracetest.SpanStub
			for _, k := range []trace.SpanKind{trace.SpanKindUnspecified, trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKind(42)} {
				s := stub(t, "kind "+k.String())
				s.SpanKind = k
				out = append(out, s)
			}
			s := stub(t, "state")
			s.SpanContext = sc(t, tid1, sid1, trace.FlagsSampled, false, "vendor=x,other=y")
			s.DroppedAttributes, s.DroppedEvents, s.DroppedLinks = 1, 300, math.MaxUint32+5
			s.StartTime, s.EndTime = time.Unix(-1, 0), time.Time{} // before 1970: 0
			return append(out, s)
		},
		want: func() *collectorpb.ExportTraceServiceRequest {
			var spans []*tracepb.Span
			for _, k := range []tracepb.Span_SpanKind{tracepb.Span_SPAN_KIND_UNSPECIFIED, tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CLIENT, tracepb.Span_SPAN_KIND_PRODUCER, tracepb.Span_SPAN_KIND_CONSUMER, tracepb.Span_SPAN_KIND_UNSPECIFIED} {
				s := pbSpan("")
				s.Kind = k
				spans = append(spans, s)
			}
			for i, k := range []string{"unspecified", "server", "client", "producer", "consumer", "unspecified"} {
				spans[i].Name = "kind " + k
			}
			s := pbSpan("state")
			s.TraceState = "vendor=x,other=y"
			s.DroppedAttributesCount, s.DroppedEventsCount, s.DroppedLinksCount = 1, 300, math.MaxUint32
			s.StartTimeUnixNano, s.EndTimeUnixNano = 0, 0
			return single(append(spans, s)...)
		}(),
	}, {
		name: "parents and flags",
		spans: func(t *testing.T) []tracetest.SpanStub {
			root := stub(t, "root")
			unsampled := stub(t, "unsampled root")
			unsampled.SpanContext = sc(t, tid1, sid1, 0, false, "")
			remote := stub(t, "remote parent")
			remote.Parent = sc(t, tid1, sid2, trace.FlagsSampled, true, "")
			local := stub(t, "local parent")
			local.Parent = sc(t, tid1, sid2, trace.FlagsSampled, false, "")
			return []tracetest.SpanStub{root, unsampled, remote, local}
		},
		want: func() *collectorpb.ExportTraceServiceRequest {
			root, unsampled, remote, local := pbSpan("root"), pbSpan("unsampled root"), pbSpan("remote parent"), pbSpan("local parent")
			unsampled.Flags = 0x100
			remote.ParentSpanId, remote.Flags = sid2[:], 0x301
			local.ParentSpanId, local.Flags = sid2[:], 0x101
			return single(root, unsampled, remote, local)
		}(),
	}, {
		name: "events",
		spans: func(t *testing.T) []tracetest.SpanStub {
			s := stub(t, "events")
			s.Events = []sdktrace.Event{
				{Name: "exception", Time: t0.Add(time.Millisecond), Attributes: []attribute.KeyValue{attribute.String("exception.message", "boom"), attribute.Int("n", 3)}, DroppedAttributeCount: 2},
				{Name: "", Time: t0},
				{Name: "zero time"},
			}
			return []tracetest.SpanStub{s}
		},
		want: func() *collectorpb.ExportTraceServiceRequest {
			s := pbSpan("events")
			s.Events = []*tracepb.Span_Event{
				{Name: "exception", TimeUnixNano: ns(t0.Add(time.Millisecond)), Attributes: []*commonpb.KeyValue{kv("exception.message", sv("boom")), kv("n", iv(3))}, DroppedAttributesCount: 2},
				{TimeUnixNano: ns(t0)},
				{Name: "zero time"},
			}
			return single(s)
		}(),
	}, {
		name: "links",
		spans: func(t *testing.T) []tracetest.SpanStub {
			s := stub(t, "links")
			s.Links = []sdktrace.Link{
				{SpanContext: sc(t, tid2, sid3, trace.FlagsSampled, true, "k=v"), Attributes: []attribute.KeyValue{attribute.String("why", "batch")}, DroppedAttributeCount: 4},
				{SpanContext: sc(t, tid1, sid2, 0, false, "")},
			}
			return []tracetest.SpanStub{s}
		},
		want: func() *collectorpb.ExportTraceServiceRequest {
			s := pbSpan("links")
			s.Links = []*tracepb.Span_Link{
				{TraceId: tid2[:], SpanId: sid3[:], TraceState: "k=v", Attributes: []*commonpb.KeyValue{kv("why", sv("batch"))}, DroppedAttributesCount: 4, Flags: 0x301},
				{TraceId: tid1[:], SpanId: sid2[:], Flags: 0x100},
			}
			return single(s)
		}(),
	}, {
		name: "status",
		spans: func(t *testing.T) []tracetest.SpanStub {
			e, ok, unset := stub(t, "error"), stub(t, "ok"), stub(t, "unset")
			e.Status = sdktrace.Status{Code: codes.Error, Description: "upstream 503"}
			ok.Status = sdktrace.Status{Code: codes.Ok}
			return []tracetest.SpanStub{e, ok, unset}
		},
		want: func() *collectorpb.ExportTraceServiceRequest {
			e, ok, unset := pbSpan("error"), pbSpan("ok"), pbSpan("unset")
			e.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "upstream 503"}
			ok.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
			return single(e, ok, unset)
		}(),
	}, {
		name: "resources and scopes, grouped in the order seen",
		spans: func(t *testing.T) []tracetest.SpanStub {
			var out []tracetest.SpanStub
			for i, c := range []struct {
				res   *resource.Resource
				scope instrumentation.Scope
			}{
				{resA, scope1}, {resB, scope1}, {resA, scope2}, {resA, scope1}, {resB, instrumentation.Scope{}}, {resAb, scope1}, {resB, scope1},
			} {
				s := stub(t, string(rune('0'+i)))
				s.Resource, s.InstrumentationScope = c.res, c.scope
				out = append(out, s)
			}
			return out
		},
		want: &collectorpb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
			{Resource: pbResA, SchemaUrl: schema, ScopeSpans: []*tracepb.ScopeSpans{
				{Scope: pbScope1, SchemaUrl: schema, Spans: []*tracepb.Span{pbSpan("0"), pbSpan("3")}},
				{Scope: pbScope2, Spans: []*tracepb.Span{pbSpan("2")}},
			}},
			{Resource: pbResB, ScopeSpans: []*tracepb.ScopeSpans{
				{Scope: pbScope1, SchemaUrl: schema, Spans: []*tracepb.Span{pbSpan("1"), pbSpan("6")}},
				{Spans: []*tracepb.Span{pbSpan("4")}},
			}},
			{Resource: pbResA, ScopeSpans: []*tracepb.ScopeSpans{
				{Scope: pbScope1, SchemaUrl: schema, Spans: []*tracepb.Span{pbSpan("5")}},
			}},
		}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var spans []sdktrace.ReadOnlySpan
			for _, s := range tc.spans(t) {
				spans = append(spans, s.Snapshot())
			}
			data := appendRequest(nil, groupSpans(spans))
			var got collectorpb.ExportTraceServiceRequest
			if err := proto.Unmarshal(data, &got); err != nil {
				t.Fatalf("the generated code cannot decode the request: %v", err)
			}
			// proto.Equal also compares unknown fields: a field written
			// under a wrong number would be one.
			if !proto.Equal(&got, tc.want) {
				t.Errorf("decoded request differs: %s", diff(&got, tc.want))
			}
		})
	}
}

// diff names the first part of got that differs from want: a span's
// attribute, event or link, or a span, scope or resource.
func diff(got, want *collectorpb.ExportTraceServiceRequest) string {
	// short is m in text form, cut for the error messages.
	short := func(m proto.Message) string {
		s := prototext.Format(m)
		if len(s) > 600 {
			s = s[:600] + "..."
		}
		return s
	}
	lists := func(what string, got, want []proto.Message) string {
		for i := range max(len(got), len(want)) {
			switch {
			case i >= len(got):
				return fmt.Sprintf("%s %d missing: want %s", what, i, short(want[i]))
			case i >= len(want):
				return fmt.Sprintf("%s %d extra: got %s", what, i, short(got[i]))
			case !proto.Equal(got[i], want[i]):
				return fmt.Sprintf("%s %d:\ngot:  %s\nwant: %s", what, i, short(got[i]), short(want[i]))
			}
		}
		return ""
	}
	msgs := func(xs any) []proto.Message {
		var out []proto.Message
		v := reflect.ValueOf(xs)
		for i := range v.Len() {
			out = append(out, v.Index(i).Interface().(proto.Message))
		}
		return out
	}
	rg, rw := got.GetResourceSpans(), want.GetResourceSpans()
	if len(rg) == len(rw) {
		for i := range rg {
			sg, sw := rg[i].GetScopeSpans(), rw[i].GetScopeSpans()
			if len(sg) != len(sw) {
				break
			}
			for j := range sg {
				pg, pw := sg[j].GetSpans(), sw[j].GetSpans()
				if len(pg) != len(pw) {
					break
				}
				for k := range pg {
					where := fmt.Sprintf("resource %d scope %d span %d (%s):", i, j, k, pw[k].GetName())
					if d := lists(where+" attribute", msgs(pg[k].GetAttributes()), msgs(pw[k].GetAttributes())); d != "" {
						return d
					}
					if d := lists(where+" event", msgs(pg[k].GetEvents()), msgs(pw[k].GetEvents())); d != "" {
						return d
					}
					if d := lists(where+" link", msgs(pg[k].GetLinks()), msgs(pw[k].GetLinks())); d != "" {
						return d
					}
				}
			}
		}
	}
	return "\ngot:  " + short(got) + "\nwant: " + short(want)
}

// TestAppendMessageLengths: the length prefix of a nested message is
// right at each varint size boundary (1, 2 and 3 bytes).
func TestAppendMessageLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 70000} {
		s := strings.Repeat("z", n)
		data := appendMessage(nil, fKeyValueValue, func(b []byte) []byte { return appendOneofString(b, fAnyString, s) })
		data = appendOneofString(data, fKeyValueKey, "after")
		var got commonpb.KeyValue
		if err := proto.Unmarshal(data, &got); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got.GetValue().GetStringValue() != s || got.GetKey() != "after" {
			t.Errorf("n=%d: decoded a %d-byte value and key %q", n, len(got.GetValue().GetStringValue()), got.GetKey())
		}
	}
}
