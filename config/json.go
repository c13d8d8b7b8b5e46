package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// LoadFile reads the JSON file at path as a layer named "file <path>". A
// missing file returns an error wrapping [fs.ErrNotExist]; malformed JSON
// returns an error naming the file and the line:column of the fault, which
// wraps a [*SyntaxError].
func LoadFile(path string) (*Map, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	m, lines, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("config %s:%w", path, err)
	}
	origin := make(map[string]Origin, len(lines))
	for k, line := range lines {
		origin[k] = Origin{Where: path + ":" + strconv.Itoa(line)}
	}
	return &Map{name: "file " + path, m: m, origin: origin}, nil
}

// SyntaxError reports JSON that is malformed or not an object at the top
// level. Its message is "<line>:<col>: <message>", lines and columns
// counting from 1, so that callers can prefix a file name.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// ParseJSON flattens a JSON object into dotted keys:
// {"public":{"port":9000}} becomes public.port = "9000". Keys are
// lower-cased; numbers keep their literal text; arrays of scalars are
// joined with ","; other arrays keep their JSON text; nulls are skipped.
// When two members flatten to the same key ({"a":{"b":1},"A.b":2}), the
// later one in the document wins.
//
// Malformed JSON, trailing data and a top level that is not an object are
// reported as a [*SyntaxError].
func ParseJSON(data []byte) (map[string]string, error) {
	m, _, err := parseJSON(data)
	return m, err
}

// parseJSON is ParseJSON that also returns the line each key is set on.
func parseJSON(data []byte) (map[string]string, map[string]int, error) {
	// Validate the whole document first, so that a fault is reported with
	// the position encoding/json found it at.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, jsonError(data, err)
	}
	end := dec.InputOffset()
	if i := bytes.IndexFunc(data[end:], func(r rune) bool { return !isSpace(r) }); i >= 0 {
		line, col := position(data, end+int64(i)+1)
		return nil, nil, &SyntaxError{Line: line, Col: col, Msg: "unexpected data after the top-level object"}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, nil, &SyntaxError{Line: 1, Col: 1, Msg: "the top level must be a JSON object, not " + kind(v)}
	}
	// Then walk it in document order, so that the result does not depend
	// on map iteration when two members name the same key.
	f := flattener{dec: json.NewDecoder(bytes.NewReader(data)), data: data, out: make(map[string]string), lines: make(map[string]int)}
	f.dec.UseNumber()
	if err := f.value(""); err != nil {
		return nil, nil, jsonError(data, err) // not reached: data is valid JSON
	}
	return f.out, f.lines, nil
}

// flattener walks a valid JSON document token by token.
type flattener struct {
	dec   *json.Decoder
	data  []byte
	out   map[string]string
	lines map[string]int // the line each key of out is set on
}

// value flattens the next value into key.
func (f *flattener) value(key string) error {
	if f.peek() == '[' {
		var arr []any
		if err := f.dec.Decode(&arr); err != nil {
			return err
		}
		f.set(key, scalar(arr))
		return nil
	}
	tok, err := f.dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim: // '{': arrays were decoded above
		for f.dec.More() {
			k, err := f.dec.Token()
			if err != nil {
				return err
			}
			name := strings.ToLower(k.(string))
			if key != "" {
				name = key + "." + name
			}
			if err := f.value(name); err != nil {
				return err
			}
		}
		_, err := f.dec.Token() // '}'
		return err
	case nil:
		// Skipped: a null sets nothing.
	default:
		f.set(key, scalar(t))
	}
	return nil
}

// set sets key to v, on the line the decoder has reached: the line of the
// value's last byte.
func (f *flattener) set(key, v string) {
	f.out[key] = v
	f.lines[key], _ = position(f.data, f.dec.InputOffset())
}

// isSpace reports whether r is JSON white space.
func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

// peek returns the first byte of the next value, skipping white space and
// the separators a token reader has not consumed yet.
func (f *flattener) peek() byte {
	for _, c := range f.data[f.dec.InputOffset():] {
		switch c {
		case ' ', '\t', '\r', '\n', ':', ',':
			continue
		}
		return c
	}
	return 0
}

func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			switch e.(type) {
			case map[string]any, []any, nil:
				b, _ := json.Marshal(v)
				return string(b)
			}
			parts = append(parts, scalar(e))
		}
		return strings.Join(parts, ",")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func kind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := position(data, syn.Offset)
		return &SyntaxError{Line: line, Col: col, Msg: syn.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := position(data, int64(len(data)))
		return &SyntaxError{Line: line, Col: col, Msg: "unexpected end of JSON input"}
	}
	return &SyntaxError{Line: 1, Col: 1, Msg: err.Error()}
}

// position returns the 1-based line and column of the byte at offset-1:
// the last byte read when a decoder stopped after reading offset bytes.
func position(data []byte, offset int64) (line, col int) {
	offset = min(offset, int64(len(data)))
	if offset <= 0 {
		return 1, 1
	}
	at := int(offset) - 1
	before := data[:at]
	line = bytes.Count(before, []byte("\n")) + 1
	col = at - bytes.LastIndexByte(before, '\n')
	return line, col
}
