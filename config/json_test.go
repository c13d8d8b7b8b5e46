package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/svc-dev/svc/config"
)

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty object", `{}`, map[string]string{}},
		{"nested objects", `{"public":{"port":9000,"host":"0.0.0.0"}}`,
			map[string]string{"public.port": "9000", "public.host": "0.0.0.0"}},
		{"deep nesting", `{"a":{"b":{"c":{"d":"x"}}}}`, map[string]string{"a.b.c.d": "x"}},
		{"keys lower-cased", `{"Public":{"PORT":1},"Log":{"Level":"Debug"}}`,
			map[string]string{"public.port": "1", "log.level": "Debug"}},
		{"numbers keep their text", `{"a":1.50,"b":1e3,"c":-0,"d":12345678901234567890}`,
			map[string]string{"a": "1.50", "b": "1e3", "c": "-0", "d": "12345678901234567890"}},
		{"booleans", `{"t":true,"f":false}`, map[string]string{"t": "true", "f": "false"}},
		{"nulls skipped", `{"a":null,"b":{"c":null},"d":1}`, map[string]string{"d": "1"}},
		{"arrays of scalars joined", `{"etcd":{"endpoints":["http://a:2379","http://b:2379"]},"mix":[1,"x",true]}`,
			map[string]string{"etcd.endpoints": "http://a:2379,http://b:2379", "mix": "1,x,true"}},
		{"empty array", `{"a":[]}`, map[string]string{"a": ""}},
		{"array of objects keeps JSON", `{"a":[{"x":1},{"y":[2]}]}`, map[string]string{"a": `[{"x":1},{"y":[2]}]`}},
		{"nested arrays keep JSON", `{"a":[[1,2],[3]]}`, map[string]string{"a": `[[1,2],[3]]`}},
		{"array with null keeps JSON", `{"a":[1,null]}`, map[string]string{"a": `[1,null]`}},
		{"dotted keys", `{"discovery.override.users":"http://u"}`, map[string]string{"discovery.override.users": "http://u"}},
		{"strings with escapes", `{"a":"line\nnext \u00e9 \"q\""}`, map[string]string{"a": "line\nnext é \"q\""}},
		{"white space everywhere", " \n{ \"a\" :\t{ \"b\" : [ 1 , 2 ] } , \"c\" : \"d\" }\n ",
			map[string]string{"a.b": "1,2", "c": "d"}},
		{"later duplicate wins", `{"a":{"b":1},"A.B":2}`, map[string]string{"a.b": "2"}},
		{"later duplicate wins, other order", `{"A.B":2,"a":{"b":1}}`, map[string]string{"a.b": "1"}},
		{"duplicate objects merge", `{"a":{"b":1},"a":{"c":2}}`, map[string]string{"a.b": "1", "a.c": "2"}},
		{"null does not erase", `{"a":1,"a":null}`, map[string]string{"a": "1"}},
		{"string that looks like JSON", `{"a":"[1,2]"}`, map[string]string{"a": "[1,2]"}},
		{"colon and comma inside strings", `{"a:b":"c,d","e":{"f,g":"h:i"}}`, map[string]string{"a:b": "c,d", "e.f,g": "h:i"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseJSON(%q) error: %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseJSON(%q) = %v; want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		line, col int
		msg       string
	}{
		{"trailing comma", "{\n  \"public\": {\"port\": 9000,}\n}\n", 2, 27, "invalid character '}'"},
		{"truncated", `{"log": `, 1, 8, "unexpected end of JSON input"},
		{"empty input", ``, 1, 1, "unexpected end of JSON input"},
		{"not an object", `[1]`, 1, 1, "the top level must be a JSON object, not an array"},
		{"a string", `"x"`, 1, 1, "not a string"},
		{"a number", `42`, 1, 1, "not a number"},
		{"null", `null`, 1, 1, "not null"},
		{"trailing data", "{}\n{}", 2, 1, "unexpected data after the top-level object"},
		{"trailing garbage", "{}A", 1, 3, "unexpected data after the top-level object"},
		{"trailing garbage after space", "{} \n x", 2, 2, "unexpected data after the top-level object"},
		{"bad literal on line 3", "{\n\"a\": 1,\n\"b\": tru\n}", 3, 9, "invalid character"},
		{"single quotes", `{'a':1}`, 1, 2, "invalid character '\\''"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseJSON([]byte(tt.in))
			var syn *config.SyntaxError
			if !errors.As(err, &syn) {
				t.Fatalf("ParseJSON(%q) error = %v; want a *config.SyntaxError", tt.in, err)
			}
			if syn.Line != tt.line || syn.Col != tt.col {
				t.Errorf("ParseJSON(%q) at %d:%d; want %d:%d (%v)", tt.in, syn.Line, syn.Col, tt.line, tt.col, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseJSON(%q) error = %q; want it to contain %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	ok := write("ok.json", `{"public":{"port":9000}}`)
	m, err := config.LoadFile(ok)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if got, want := m.Name(), "file "+ok; got != want {
		t.Errorf("Name() = %q; want %q", got, want)
	}
	if v, _ := m.Lookup("public.port"); v != "9000" {
		t.Errorf("Lookup(public.port) = %q; want 9000", v)
	}

	_, err = config.LoadFile(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v; want fs.ErrNotExist", err)
	}

	bad := write("bad.json", "{\n  \"public\": {\"port\": 9000,}\n}\n")
	_, err = config.LoadFile(bad)
	if want := bad + ":2:27: invalid character"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("LoadFile(bad) = %v; want it to contain %q", err, want)
	}
	var syn *config.SyntaxError
	if !errors.As(err, &syn) {
		t.Errorf("LoadFile(bad) = %v; want it to wrap a *config.SyntaxError", err)
	}
}

var position = regexp.MustCompile(`^\d+:\d+: `)

// FuzzParseJSON checks that ParseJSON never panics, fails exactly on what
// is not a JSON object, reports every failure at a line:column, and that
// its flat form is a fixed point: flattening the flat map again gives it
// back.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"public":{"port":9000}}`, `{"a":[1,"x",true],"b":null}`, `{"a":[{"x":1}]}`,
		`{"A":{"B":1},"a.b":2}`, "{\n  \"public\": {\"port\": 9000,}\n}\n", `[1]`, `{"a":"\u00e9"}`,
		`{"":{"":1}}`, `{"a":1e400}`, ``, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := config.ParseJSON(data)
		isObject := isJSONObject(data)
		if err != nil {
			if isObject {
				t.Fatalf("ParseJSON(%q) failed on a JSON object: %v", data, err)
			}
			if !position.MatchString(err.Error()) {
				t.Fatalf("ParseJSON(%q) error %q does not start with line:col", data, err)
			}
			return
		}
		if !isObject {
			t.Fatalf("ParseJSON(%q) = %v; want an error: not a JSON object", data, got)
		}
		for k := range got {
			if k != strings.ToLower(k) {
				t.Errorf("ParseJSON(%q): key %q is not lower-case", data, k)
			}
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		flat, err := config.ParseJSON(again)
		if err != nil {
			t.Fatalf("ParseJSON(%s) of a flat map: %v", again, err)
		}
		if !maps.Equal(flat, got) && validUTF8(got) {
			t.Errorf("flattening is not a fixed point: %q -> %v -> %v", data, got, flat)
		}
	})
}

// validUTF8 reports whether every key and value is valid UTF-8, which
// encoding/json needs to round-trip them unchanged.
func validUTF8(m map[string]string) bool {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// isJSONObject reports whether data is one JSON object, and nothing else.
func isJSONObject(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil || obj == nil {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF
}
