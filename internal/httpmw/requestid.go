package httpmw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/go-chi/chi/v5/middleware"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// RequestID takes the caller's X-Request-Id when it is a sane token (at most
// 128 printable ASCII characters) or makes one, puts it in the context where
// chi's middleware.GetReqID finds it, and echoes it in the response.
// Generated ids are a per-process random prefix and a counter: unique and
// cheap (no random read per request). It is [New] with only
// Options.RequestID.
func RequestID() func(http.Handler) http.Handler {
	return New(Options{RequestID: true})
}

// idSource makes request ids: a random prefix and a counter.
type idSource struct {
	prefix string // 12 hex digits and "-"
	seq    atomic.Uint64
}

func newIDSource() *idSource {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	return &idSource{prefix: hex.EncodeToString(buf[:]) + "-"}
}

// set takes or makes r's id, echoes it in w's headers and keeps it in
// rq, which also holds the header's value and a generated id's bytes.
func (s *idSource) set(w http.ResponseWriter, r *http.Request, rq *request) {
	// The server canonicalises the keys of incoming headers: indexing
	// finds what Header.Get finds without canonicalising the key again.
	var id string
	if v := r.Header[RequestIDHeader]; len(v) > 0 {
		id = v[0]
	}
	if !validID(id) {
		// The id's bytes live in rq, allocated with the request's other
		// state, and are never written again once the string exists. (An
		// id longer than rq.buf, past 10^19 ids, gets an array of its
		// own from append.)
		b := strconv.AppendUint(append(rq.buf[:0], s.prefix...), s.seq.Add(1), 10)
		id = unsafe.String(&b[0], len(b))
	}
	rq.id = id
	rq.hdr[0] = id
	w.Header()[RequestIDHeader] = rq.hdr[:]
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
