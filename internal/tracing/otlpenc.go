// This file and otlpexport.go are a hand-written replacement for the
// OpenTelemetry exporter go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp
// (and its internal tracetransform), a well-kept library that svc used
// until then. They exist for one reason: that exporter links the generated
// OTLP protobuf packages (go.opentelemetry.io/proto/otlp/...), grpc-gateway's
// runtime, genproto's httpbody and more into every svc binary, whose package
// init (descriptor registration) runs at every start and whose pages count
// in every process's RSS, even though span export is off unless an endpoint
// is configured. docs/tracing.md ("The exporter") has the measurements.
//
// The encoding follows the .proto definitions of opentelemetry-proto
// (collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto) field by field, and
// the mapping of tracetransform (span kinds, status codes, the flags'
// remote-parent bits). The tests decode what it writes with the generated
// packages, which only the tests link.

package tracing

import (
	"math"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP messages svc writes, from the .proto files.
const (
	// ExportTraceServiceRequest
	fRequestResourceSpans = 1
	// ResourceSpans
	fResourceSpansResource   = 1
	fResourceSpansScopeSpans = 2
	fResourceSpansSchemaURL  = 3
	// Resource
	fResourceAttributes = 1
	// ScopeSpans
	fScopeSpansScope     = 1
	fScopeSpansSpans     = 2
	fScopeSpansSchemaURL = 3
	// InstrumentationScope
	fScopeName       = 1
	fScopeVersion    = 2
	fScopeAttributes = 3
	// Span
	fSpanTraceID           = 1
	fSpanSpanID            = 2
	fSpanTraceState        = 3
	fSpanParentSpanID      = 4
	fSpanName              = 5
	fSpanKind              = 6
	fSpanStartTime         = 7 // fixed64
	fSpanEndTime           = 8 // fixed64
	fSpanAttributes        = 9
	fSpanDroppedAttributes = 10
	fSpanEvents            = 11
	fSpanDroppedEvents     = 12
	fSpanLinks             = 13
	fSpanDroppedLinks      = 14
	fSpanStatus            = 15
	fSpanFlags             = 16 // fixed32
	// Span.Event
	fEventTime              = 1 // fixed64
	fEventName              = 2
	fEventAttributes        = 3
	fEventDroppedAttributes = 4
	// Span.Link
	fLinkTraceID           = 1
	fLinkSpanID            = 2
	fLinkTraceState        = 3
	fLinkAttributes        = 4
	fLinkDroppedAttributes = 5
	fLinkFlags             = 6 // fixed32
	// Status
	fStatusMessage = 2
	fStatusCode    = 3
	// KeyValue
	fKeyValueKey   = 1
	fKeyValueValue = 2
	// AnyValue (a oneof: the field present is written even when zero)
	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3
	fAnyDouble = 4 // fixed64
	fAnyArray  = 5
	fAnyKVList = 6
	fAnyBytes  = 7
	// ArrayValue, KeyValueList
	fListValues = 1
)

// Enum values and flag bits of trace.proto.
const (
	statusCodeUnset = 0
	statusCodeOK    = 1
	statusCodeError = 2

	// SpanFlags: the low 8 bits are the W3C trace flags.
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// resourceGroup and scopeGroup are the spans of one batch grouped as OTLP
// nests them: by resource, then by instrumentation scope, in the order
// first seen.
type resourceGroup struct {
	res    *resource.Resource
	scopes []*scopeGroup
}

type scopeGroup struct {
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
}

// groupSpans groups spans by resource (its attributes and schema URL) and
// instrumentation scope, as tracetransform does. Nil spans are skipped.
func groupSpans(spans []sdktrace.ReadOnlySpan) []*resourceGroup {
	type resKey struct {
		attrs  attribute.Distinct
		schema string
	}
	type scopeKey struct {
		res   resKey
		scope instrumentation.Scope
	}
	var out []*resourceGroup
	resources := map[resKey]*resourceGroup{}
	scopes := map[scopeKey]*scopeGroup{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		rk := resKey{res.Equivalent(), res.SchemaURL()}
		rg := resources[rk]
		if rg == nil {
			rg = &resourceGroup{res: res}
			resources[rk] = rg
			out = append(out, rg)
		}
		sk := scopeKey{rk, s.InstrumentationScope()}
		sg := scopes[sk]
		if sg == nil {
			sg = &scopeGroup{scope: sk.scope}
			scopes[sk] = sg
			rg.scopes = append(rg.scopes, sg)
		}
		sg.spans = append(sg.spans, s)
	}
	return out
}

// appendRequest appends the ExportTraceServiceRequest of spans to b.
func appendRequest(b []byte, groups []*resourceGroup) []byte {
	for _, rg := range groups {
		b = appendMessage(b, fRequestResourceSpans, func(b []byte) []byte {
			return appendResourceSpans(b, rg)
		})
	}
	return b
}

func appendResourceSpans(b []byte, rg *resourceGroup) []byte {
	if rg.res != nil {
		b = appendMessage(b, fResourceSpansResource, func(b []byte) []byte {
			for it := rg.res.Iter(); it.Next(); {
				b = appendKeyValue(b, fResourceAttributes, it.Attribute())
			}
			return b
		})
	}
	for _, sg := range rg.scopes {
		b = appendMessage(b, fResourceSpansScopeSpans, func(b []byte) []byte {
			return appendScopeSpans(b, sg)
		})
	}
	return appendString(b, fResourceSpansSchemaURL, rg.res.SchemaURL())
}

func appendScopeSpans(b []byte, sg *scopeGroup) []byte {
	if sc := sg.scope; sc != (instrumentation.Scope{}) {
		b = appendMessage(b, fScopeSpansScope, func(b []byte) []byte {
			b = appendString(b, fScopeName, sc.Name)
			b = appendString(b, fScopeVersion, sc.Version)
			for it := sc.Attributes.Iter(); it.Next(); {
				b = appendKeyValue(b, fScopeAttributes, it.Attribute())
			}
			return b
		})
	}
	for _, s := range sg.spans {
		b = appendMessage(b, fScopeSpansSpans, func(b []byte) []byte {
			return appendSpan(b, s)
		})
	}
	return appendString(b, fScopeSpansSchemaURL, sg.scope.SchemaURL)
}

func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, fSpanTraceID, tid[:])
	b = appendBytes(b, fSpanSpanID, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, fSpanParentSpanID, psid[:])
	}
	b = appendString(b, fSpanName, s.Name())
	b = appendVarint(b, fSpanKind, spanKind(s.SpanKind()))
	b = appendFixed64(b, fSpanStartTime, unixNano(s.StartTime().UnixNano()))
	b = appendFixed64(b, fSpanEndTime, unixNano(s.EndTime().UnixNano()))
	for _, kv := range s.Attributes() {
		b = appendKeyValue(b, fSpanAttributes, kv)
	}
	b = appendVarint(b, fSpanDroppedAttributes, count(s.DroppedAttributes()))
	for _, e := range s.Events() {
		b = appendMessage(b, fSpanEvents, func(b []byte) []byte {
			b = appendFixed64(b, fEventTime, unixNano(e.Time.UnixNano()))
			b = appendString(b, fEventName, e.Name)
			for _, kv := range e.Attributes {
				b = appendKeyValue(b, fEventAttributes, kv)
			}
			return appendVarint(b, fEventDroppedAttributes, count(e.DroppedAttributeCount))
		})
	}
	b = appendVarint(b, fSpanDroppedEvents, count(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = appendMessage(b, fSpanLinks, func(b []byte) []byte {
			ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = appendBytes(b, fLinkTraceID, ltid[:])
			b = appendBytes(b, fLinkSpanID, lsid[:])
			b = appendString(b, fLinkTraceState, l.SpanContext.TraceState().String())
			for _, kv := range l.Attributes {
				b = appendKeyValue(b, fLinkAttributes, kv)
			}
			b = appendVarint(b, fLinkDroppedAttributes, count(l.DroppedAttributeCount))
			return appendFixed32(b, fLinkFlags, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		})
	}
	b = appendVarint(b, fSpanDroppedLinks, count(s.DroppedLinks()))
	// The status is always present, as tracetransform writes it.
	st := s.Status()
	b = appendMessage(b, fSpanStatus, func(b []byte) []byte {
		b = appendString(b, fStatusMessage, st.Description)
		return appendVarint(b, fStatusCode, statusCode(st.Code))
	})
	return appendFixed32(b, fSpanFlags, spanFlags(sc.TraceFlags(), parent))
}

// spanFlags is the flags field of a span or link: the W3C trace flags, the
// bit saying whether the parent (for a link, the linked span) is remote is
// known, and that bit.
func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if parent.IsRemote() {
		f |= flagIsRemote
	}
	return f
}

// spanKind maps the SDK's kinds to Span.SpanKind; the values happen to
// be the same, but the mapping does not rely on it.
func spanKind(k trace.SpanKind) uint64 {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0 // SPAN_KIND_UNSPECIFIED
}

// statusCode maps codes.Code (Unset, Error, Ok) to Status.StatusCode
// (UNSET, OK, ERROR): the numbers differ.
func statusCode(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return statusCodeOK
	case codes.Error:
		return statusCodeError
	}
	return statusCodeUnset
}

func unixNano(ns int64) uint64 { return uint64(max(0, ns)) }

// count clamps a dropped count to the uint32 of the protocol.
func count(n int) uint64 { return uint64(min(max(0, int64(n)), math.MaxUint32)) }

func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	return appendMessage(b, num, func(b []byte) []byte {
		b = appendString(b, fKeyValueKey, string(kv.Key))
		return appendMessage(b, fKeyValueValue, func(b []byte) []byte {
			return appendAnyValue(b, kv.Value)
		})
	})
}

// appendAnyValue appends the fields of the AnyValue of v. The oneof's
// field is written even when it holds its zero value (false, 0, ""), so
// that the receiver sees its type; an EMPTY value writes nothing.
func appendAnyValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.EMPTY:
		return b
	case attribute.BOOL:
		return appendOneofVarint(b, fAnyBool, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		return appendOneofVarint(b, fAnyInt, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		return appendOneofString(b, fAnyString, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, fAnyBytes, protowire.BytesType)
		return protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		return appendArray(b, v.AsBoolSlice(), func(b []byte, x bool) []byte {
			return appendOneofVarint(b, fAnyBool, protowire.EncodeBool(x))
		})
	case attribute.INT64SLICE:
		return appendArray(b, v.AsInt64Slice(), func(b []byte, x int64) []byte {
			return appendOneofVarint(b, fAnyInt, uint64(x))
		})
	case attribute.FLOAT64SLICE:
		return appendArray(b, v.AsFloat64Slice(), func(b []byte, x float64) []byte {
			b = protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type)
			return protowire.AppendFixed64(b, math.Float64bits(x))
		})
	case attribute.STRINGSLICE:
		return appendArray(b, v.AsStringSlice(), func(b []byte, x string) []byte {
			return appendOneofString(b, fAnyString, x)
		})
	case attribute.SLICE:
		return appendArray(b, v.AsSlice(), appendAnyValue)
	case attribute.MAP:
		return appendMessage(b, fAnyKVList, func(b []byte) []byte {
			for _, kv := range v.AsMap() {
				b = appendKeyValue(b, fListValues, kv)
			}
			return b
		})
	}
	// A type this code does not know (a newer SDK): what tracetransform
	// writes for one.
	return appendOneofString(b, fAnyString, "INVALID")
}

// appendArray appends an ArrayValue field of the AnyValues of xs, each
// written by value.
func appendArray[T any](b []byte, xs []T, value func([]byte, T) []byte) []byte {
	return appendMessage(b, fAnyArray, func(b []byte) []byte {
		for _, x := range xs {
			b = appendMessage(b, fListValues, func(b []byte) []byte { return value(b, x) })
		}
		return b
	})
}

// appendMessage appends field num holding the message that body appends.
// It reserves one byte for the length, enough below 128 bytes, and moves
// the body when the length needs more.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	at := len(b)
	b = append(b, 0)
	b = body(b)
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	k := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, k-1)...)
	copy(b[at+k:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}

// The scalar appenders below leave out a field holding its zero value, as
// proto3 does.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendOneofString(b, num, s)
}

// appendOneofString appends a string field even when empty. A string
// that is not valid UTF-8 gets U+FFFD for its invalid bytes: a protobuf
// string must be UTF-8, and the receiver would reject the whole batch.
func appendOneofString(b []byte, num protowire.Number, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendOneofVarint(b, num, v)
}

func appendOneofVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}
