package config

import (
	"context"
	"errors"
	"io/fs"
	"sync"
)

// Layer yields the current contents of one configuration layer. A [Live]
// store calls Load at every reload: a [*File] re-reads its file, the etcd
// layer (package config/etcdsource) returns the snapshot its watch keeps,
// and fixed layers ([*Map], [Env]) return themselves.
type Layer interface {
	// Name names the layer in logs and reload reports.
	Name() string
	// Load returns the layer's contents now; a nil Source is an empty
	// layer. On error, the layer's previous contents stay in force.
	Load(ctx context.Context) (Source, error)
}

// Notifier is a [Layer] that announces its own changes. After
// [Live.Start], a Live reloads each time Changed delivers.
type Notifier interface {
	Layer
	// Changed returns a channel that receives after the layer's contents
	// changed. Sends are coalesced: one receive may stand for several
	// changes.
	Changed() <-chan struct{}
}

var (
	_ Layer = (*Map)(nil)
	_ Layer = Env{}
	_ Layer = (*File)(nil)
)

// Load returns m itself: a Map never changes. A nil *Map is an empty layer.
func (m *Map) Load(context.Context) (Source, error) {
	if m == nil {
		return nil, nil
	}
	return m, nil
}

// Load returns e itself: the process environment does not change.
func (e Env) Load(context.Context) (Source, error) { return e, nil }

// File is the layer of one optional JSON file, re-read from disk at every
// [Live] reload. A missing file is an empty layer, as at startup; a file
// that does not parse is an error naming the file and line:column (see
// [LoadFile]). A File is safe for concurrent use.
type File struct {
	path string

	mu        sync.Mutex // guards preload
	preloaded *Map       // read by Preload, returned by the next Load
	preread   bool       // Preload ran and its result waits for Load
}

// NewFile returns the layer of the JSON file at path. It reads nothing.
func NewFile(path string) *File { return &File{path: path} }

// Path returns the file's path as given to NewFile.
func (f *File) Path() string { return f.path }

// Name returns "file <path>", the name [LoadFile] gives the layer.
func (f *File) Name() string { return "file " + f.path }

// Preload reads and parses the file now and keeps the result for the next
// Load, so that a program that must look at a file before building a [Live]
// over it (to find the environment or etcd) reads it once. A missing file
// returns (nil, nil).
func (f *File) Preload() (Source, error) {
	src, err := f.read()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.preloaded, f.preread = src, true
	if src == nil {
		return nil, nil
	}
	return src, nil
}

// Load reads and parses the file, or returns what Preload read if no Load
// came since. A missing file returns (nil, nil).
func (f *File) Load(context.Context) (Source, error) {
	f.mu.Lock()
	if f.preread {
		m := f.preloaded
		f.preloaded, f.preread = nil, false
		f.mu.Unlock()
		if m == nil {
			return nil, nil
		}
		return m, nil
	}
	f.mu.Unlock()
	m, err := f.read()
	if err != nil || m == nil {
		return nil, err
	}
	return m, nil
}

func (f *File) read() (*Map, error) {
	m, err := LoadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}
