package registry_test

import (
	"strings"
	"testing"

	"github.com/svc-dev/svc/registry"
)

func TestExpand(t *testing.T) {
	values := map[string]string{
		"territory": "fr",
		"userid":    "42",
		"space":     "a b",
		"slash":     "a/b",
		"unicode":   "é?#%",
		"empty":     "",
	}
	tests := []struct {
		spec    string
		want    string
		wantErr string
	}{
		{"/1.x/{territory}/users/{userid}", "/1.x/fr/users/42", ""},
		{"/static/path", "/static/path", ""},
		{"", "", ""},
		{"{territory}{userid}", "fr42", ""},
		{"/q/{space}", "/q/a%20b", ""},
		{"/q/{slash}", "/q/a%2Fb", ""},
		{"/q/{unicode}", "/q/%C3%A9%3F%23%25", ""},
		{"http://host:1/{territory}", "http://host:1/fr", ""},
		{"/1.x/{territory}/users/{missing}", "", "no value for {missing}"},
		{"/q/{empty}", "", "empty value for {empty}"},
		{"/q/{territory", "", "'{' without '}'"},
		{"/q/territory}", "", "'}' without '{'"},
		{"/q/{}", "", "empty variable {}"},
		{"/q/{a{b}", "", "'{' inside a variable"},
	}
	for _, tc := range tests {
		got, err := registry.Expand(tc.spec, values)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "registry: ") {
				t.Errorf("Expand(%q) = %q, %v; want error containing %q", tc.spec, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
		}
	}
}
