package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// LoadFile reads the JSON file at path as a layer named "file <path>". A
// missing file returns an error wrapping [fs.ErrNotExist]; malformed JSON
// returns an error naming the file and the line:column of the fault.
func LoadFile(path string) (*Map, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	m, err := ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("config %s:%w", path, err)
	}
	return NewMap("file "+path, m), nil
}

// ParseJSON flattens a JSON object into dotted keys:
// {"public":{"port":9000}} becomes public.port = "9000". Keys are
// lower-cased; numbers keep their literal text; arrays of scalars are
// joined with ","; other arrays keep their JSON text; nulls are skipped.
//
// A syntax error is reported as " <line>:<col>: <message>" so that callers
// can prefix the file name.
func ParseJSON(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err == nil {
		line, col := position(data, dec.InputOffset())
		return nil, fmt.Errorf("%d:%d: unexpected data after the top-level object", line, col)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("1:1: the top level must be a JSON object, not %s", kind(v))
	}
	out := make(map[string]string)
	flatten("", obj, out)
	return out, nil
}

func flatten(prefix string, obj map[string]any, out map[string]string) {
	for k, v := range obj {
		key := strings.ToLower(k)
		if prefix != "" {
			key = prefix + "." + key
		}
		switch v := v.(type) {
		case map[string]any:
			flatten(key, v, out)
		case nil:
		default:
			out[key] = scalar(v)
		}
	}
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
		return fmt.Errorf("%d:%d: %s", line, col, syn.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := position(data, int64(len(data)))
		return fmt.Errorf("%d:%d: unexpected end of JSON input", line, col)
	}
	return fmt.Errorf("1:1: %w", err)
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}
