// Command barehttp is the proof's baseline: the example's GET /hello/{name}
// on a bare net/http server, with no framework, no metrics and no registry.
// It listens on PUBLIC_HOST:PUBLIC_PORT (default 127.0.0.1:0), logs one
// JSON "started" line like a svc service, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "barehttp:", err)
		os.Exit(1)
	}
}

func run() error {
	host, port := os.Getenv("PUBLIC_HOST"), os.Getenv("PUBLIC_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "0"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"message": "hello, " + r.PathValue("name"), "count": 1})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Info("started", "public", ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
