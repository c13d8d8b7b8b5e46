// Command load sends a fixed number of GET requests, for counts that do
// not depend on time (instructions.sh): load URL N [CONNS] sends N
// requests to URL over CONNS keep-alive connections (default 4) and fails
// on any error or non-200 answer.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || len(args) > 3 {
		return fmt.Errorf("usage: load URL N [CONNS]")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	conns := 4
	if len(args) == 3 {
		if conns, err = strconv.Atoi(args[2]); err != nil {
			return err
		}
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for g := range conns {
		wg.Go(func() {
			for i := g; i < n; i += conns {
				if err := get(c, args[0]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
