// Command handover stands in for a service that restarts in place, for
// svcctl up's tests: on SIGUSR2 it starts a successor from its executable
// with its environment and output, closes its listeners and exits 0 once
// the successor serves. It serves GET /admin/process ({"pid"}) on
// ADMIN_PORT and /readyz on PRIVATE_PORT, on 127.0.0.1. It is not svc:
// the successor binds the ports again (svc hands the sockets over).
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/process", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"pid": %d}`, os.Getpid())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	var srvs []*http.Server
	for _, port := range []string{os.Getenv("ADMIN_PORT"), os.Getenv("PRIVATE_PORT")} {
		var ln net.Listener
		var err error
		for range 100 { // the predecessor may still hold the port
			if ln, err = net.Listen("tcp", "127.0.0.1:"+port); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "handover:", err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: mux}
		srvs = append(srvs, srv)
		go srv.Serve(ln)
	}
	fmt.Fprintln(os.Stderr, "handover: serving as pid", os.Getpid())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGUSR2)
	s := <-sig
	if s == syscall.SIGUSR2 {
		exe, _ := os.Executable()
		cmd := exec.Command(exe)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "handover:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "handover: successor", strconv.Itoa(cmd.Process.Pid))
	}
	for _, srv := range srvs {
		srv.Shutdown(context.Background())
	}
	if s == syscall.SIGUSR2 { // exit once the successor serves, as svc does
		for range 200 {
			if resp, err := http.Get("http://127.0.0.1:" + os.Getenv("ADMIN_PORT") + "/admin/process"); err == nil {
				resp.Body.Close()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
