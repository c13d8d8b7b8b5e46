package httpmw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/go-chi/chi/v5/middleware"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// RequestID takes the caller's X-Request-Id when it is a sane token (at most
// 128 printable ASCII characters) or makes one, puts it in the context where
// chi's middleware.GetReqID finds it, and echoes it in the response.
// Generated ids are a per-process random prefix and a counter: unique and
// cheap (no random read per request).
func RequestID() func(http.Handler) http.Handler {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	prefix := hex.EncodeToString(buf[:]) + "-"
	var seq atomic.Uint64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(RequestIDHeader)
			if !validID(id) {
				id = prefix + strconv.FormatUint(seq.Add(1), 10)
			}
			w.Header().Set(RequestIDHeader, id)
			ctx := context.WithValue(r.Context(), middleware.RequestIDKey, id)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// GetID returns the request id of ctx, or "".
func GetID(ctx context.Context) string { return middleware.GetReqID(ctx) }
