package bench

import (
	"io"
	"net/http"
)

// Hello is the handler every throughput baseline serves: a 6-byte plain
// text body.
func Hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "hello\n")
}
