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
	files []configFile
	store *config.Store
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
	l := &layers{dir: dir}
	conv := conventions(offset)
	env := config.NewEnv(getenv)
	var top config.Source
	if o.values != nil {
		top = config.NewMap("option", o.values)
	}
	known := knownKeys(offset)

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
