package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

const flightHelp = `flight [start|stop|status] [-o FILE]: the flight recorder, the last seconds of execution trace kept in memory
  flight start [--period 10s] [--size 16MiB]: start recording (the service caps both)
  flight [-o FILE]: dump the last period to FILE (default <service>-flight-<time>.trace);
    open it with go tool trace FILE. Recording goes on.
  flight stop: stop recording and drop the buffer; flight status: whether it records.
  A dump shows the seconds before it, so start the recorder ahead of time and dump right
  after the event; flight does not start one itself (pprof trace records the next seconds).`

// flightTimeout bounds a dump: a snapshot of at most the service's cap.
const flightTimeout = time.Minute

func flightFlags(fs *flag.FlagSet) {
	fs.String("o", "", "dump: output file")
	fs.Duration("period", 0, "start: keep at least this much trace (default 10s)")
	fs.String("size", "", "start: buffer size in bytes, or with KiB, MiB (default 16MiB)")
}

func svcFlight(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, asJSON bool) error {
	sub := "dump"
	if len(args) == 1 {
		sub = args[0]
	}
	var set []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "o" && sub != "dump" || (f.Name == "period" || f.Name == "size") && sub != "start" {
			set = append(set, "-"+f.Name)
		}
	})
	if len(set) > 0 {
		return usagef("flight %s: %s does not apply (-o is for a dump, --period and --size for start)", sub, set[0])
	}
	var st struct {
		Recording    bool   `json:"recording"`
		Period       string `json:"period"`
		MaxBytes     uint64 `json:"max_bytes"`
		StartedAt    string `json:"started_at"`
		WasRecording *bool  `json:"was_recording,omitempty"`
	}
	switch sub {
	case "dump":
		return flightDump(ctx, e, c, fs.Lookup("o").Value.String())
	case "start":
		q := url.Values{}
		if p := fs.Lookup("period").Value.String(); p != "0s" {
			q.Set("period", p)
		}
		if s := fs.Lookup("size").Value.String(); s != "" {
			q.Set("size", s)
		}
		path := "/admin/flight/start"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		if err := c.callJSON(ctx, http.MethodPost, path, nil, &st); err != nil {
			return err
		}
	case "stop":
		if err := c.callJSON(ctx, http.MethodPost, "/admin/flight/stop", nil, &st); err != nil {
			return err
		}
	case "status":
		if err := c.getJSON(ctx, "/admin/flight/status", &st); err != nil {
			return err
		}
	default:
		return usagef("flight: unknown subcommand %q: want start, stop, status, or none to dump", sub)
	}
	if asJSON {
		return writeJSON(e.stdout, st)
	}
	switch {
	case st.Recording:
		fmt.Fprintf(e.stdout, "%s: flight recorder recording since %s, keeping the last %s (%s buffer)\ndump it with: svcctl %s flight -o FILE\n",
			c.label, cleanCell(st.StartedAt), cleanCell(st.Period), bytesHuman(st.MaxBytes), c.target())
	case st.WasRecording != nil && !*st.WasRecording:
		fmt.Fprintf(e.stdout, "%s: flight recorder was not recording\n", c.label)
	default:
		fmt.Fprintf(e.stdout, "%s: flight recorder stopped\n", c.label)
	}
	return nil
}

// flightDump saves GET /admin/flight to file.
func flightDump(ctx context.Context, e *env, c *adminClient, file string) error {
	ctx, cancel := context.WithTimeout(ctx, flightTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/admin/flight", nil)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusConflict {
		return fmt.Errorf("%s: no flight recorder is recording: start one with svcctl %s flight start, then dump right after the event", c.label, c.target())
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if file == "" {
		file = defaultFile(ctx, c, "flight", ".trace")
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("flight: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("flight: %s: %s", c.label, connError(err))
	}
	fmt.Fprintf(e.stdout, "wrote %s (%s)\nopen it with: go tool trace %s\n", file, bytesHuman(uint64(n)), file)
	return nil
}
