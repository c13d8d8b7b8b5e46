package admin

import (
	"errors"
	"net/http"
)

// ErrRefused marks an error of Params.Restart that refuses to restart
// (one is in progress, the process is stopping or cannot restart): POST
// /admin/restart answers it with 409 Conflict instead of 500.
var ErrRefused = errors.New("restart refused")

// restart serves POST /admin/restart: 200 with Params.Restart's answer
// once the successor serves; 409 when refused; 500 with the reason (the
// successor's exit status and last stderr lines) when the successor
// failed and this process serves on. The restart is not tied to the
// request: a client that goes away does not cancel it.
func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	answer, err := s.p.Restart(r.Context())
	switch {
	case errors.Is(err, ErrRefused):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, answer)
	}
}
