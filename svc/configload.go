package svc

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/svc-dev/svc/config"
)

// configFile is one JSON file looked for at startup.
type configFile struct {
	path  string
	found bool
}

// layers are the configuration layers of one start, lowest first.
type layers struct {
	dir   string
	files []configFile // <name>.json, <name>.<environment>.json
	known []string
	conv  *config.Map
	env   config.Env
	top   *config.Map   // WithValues; nil without
	store *config.Store // files and environment, without etcd
}

// live returns the live store over the same layers, with etcd (when not
// nil) between the files and the environment.
func (l *layers) live(etcd config.Layer, o config.LiveOptions) (*config.Live, error) {
	o.Known = l.known
	ls := []config.Layer{l.conv}
	for _, f := range l.files {
		ls = append(ls, config.NewFile(f.path))
	}
	ls = append(ls, etcd, l.env)
	if l.top != nil {
		ls = append(ls, l.top)
	}
	return config.NewLive(o, ls...)
}

// loadConfig builds the store: conventions < <name>.json <
// <name>.<environment>.json < environment < WithValues. The environment
// name that picks the second file comes from the first file or ENVIRONMENT.
func loadConfig(name string, offset int, o *options) (*layers, error) {
	getenv := o.lookupEnv()
	dir, ok := getenv(EnvConfigDir)
	if !ok || dir == "" {
		dir = "config"
	}
	l := &layers{dir: dir, known: knownKeys(offset), conv: conventions(offset), env: config.NewEnv(getenv)}
	conv, env, known := l.conv, l.env, l.known
	var top config.Source
	if o.values != nil {
		l.top = config.NewMap("option", o.values)
		top = l.top
	}

	base, err := l.load(filepath.Join(dir, name+".json"))
	if err != nil {
		return l, err
	}
	// Which environment? Resolve through the layers known so far.
	environment := config.NewStore(known, conv, base, env, top).String(KeyEnvironment, "dev")
	envFile, err := l.load(filepath.Join(dir, name+"."+environment+".json"))
	if err != nil {
		return l, err
	}
	l.store = config.NewStore(known, conv, base, envFile, env, top)
	return l, nil
}

// load reads one optional file; a missing file is no error.
func (l *layers) load(path string) (config.Source, error) {
	m, err := config.LoadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		l.files = append(l.files, configFile{path: path})
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.files = append(l.files, configFile{path: path, found: true})
	return m, nil
}
