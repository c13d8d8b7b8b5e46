package svc

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/svc-dev/svc/config"
)

// configFile is one JSON file looked for at startup.
type configFile struct {
	path  string
	found bool
	layer *config.File
}

// layers are the configuration layers of one start, lowest first, and
// what the bootstrap decoded from them before etcd.
type layers struct {
	schema *config.Schema
	conv   *config.Map
	files  []configFile // <name>.json, <name>.<environment>.json
	env    config.Env
	getenv func(string) (string, bool) // the environment: os.LookupEnv or WithEnv
	top    *config.Map                 // WithValues; nil without
	boot   Bootstrap
	store  *config.Store // every layer but etcd: what --help shows without etcd
}

// stack returns the layers lowest first, with etcd (when not nil) between
// the files and the environment, and the admin port's overrides (when not
// nil) above every other.
func (l *layers) stack(etcd, overrides config.Layer) []config.Layer {
	ls := []config.Layer{l.conv}
	for _, f := range l.files {
		ls = append(ls, f.layer)
	}
	ls = append(ls, etcd, l.env)
	if l.top != nil {
		ls = append(ls, l.top)
	}
	return append(ls, overrides)
}

// layerConvention is the lowest layer: the declared defaults and svc.Defaults.
const layerConvention = "convention"

// bootstrap reads what is needed to reach every layer: CONFIG_DIR, the
// files (each read once: the live store takes their contents as read
// here), the environment and WithValues; it decodes the environment and
// the etcd client's keys from them. Nothing else is decoded here.
func bootstrap(name string, schema *config.Schema, o *options) (*layers, error) {
	getenv := o.lookupEnv()
	dir, ok := getenv(EnvConfigDir)
	if !ok || dir == "" {
		dir = "config"
	}
	l := &layers{schema: schema, conv: schema.Defaults(layerConvention), env: config.NewEnv(getenv), getenv: getenv}
	var top config.Source
	if o.values != nil {
		l.top = config.NewMap("option", o.values)
		top = l.top
	}
	base, err := l.read(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	// Which environment? Resolve through the layers known so far.
	environment := config.NewStore(nil, l.conv, base, l.env, top).String(KeyEnvironment, "dev")
	envFile, err := l.read(filepath.Join(dir, name+"."+environment+".json"))
	if err != nil {
		return nil, err
	}
	l.store = schema.Store(l.conv, base, envFile, l.env, top)
	if err := checkBootstrap(schema, l.store); err != nil {
		return nil, err
	}
	if l.boot, err = decodeBootstrap(dir, l.store); err != nil {
		return nil, err
	}
	return l, nil
}

// bootstrapKeys are the keys decodeBootstrap decodes.
func bootstrapKeys() []string {
	return []string{KeyEnvironment, KeyEtcdEndpoints, KeyEtcdUsername, KeyEtcdPassword,
		KeyEtcdTLSCA, KeyEtcdTLSCert, KeyEtcdTLSKey, KeyEtcdDialTimeout}
}

// checkBootstrap checks the values of the bootstrap layers against their
// declarations. The live store checks every value once etcd's layer is in,
// so here only the keys decoded now must be: a start without etcd skips
// the rest (a tenth of a millisecond). With etcd configured, or when one
// of those keys is bad, every value is checked now: a bad value fails
// before etcd is dialled, and every bad value is reported at once.
func checkBootstrap(schema *config.Schema, st *config.Store) error {
	var errs []error
	for _, k := range bootstrapKeys() {
		if v, ok := st.Lookup(k); ok {
			errs = append(errs, schema.Check(v))
		}
	}
	if errors.Join(errs...) != nil || len(st.Strings(KeyEtcdEndpoints, nil)) > 0 {
		return schema.CheckAll(st)
	}
	return nil
}

// read reads one optional file, admitted by the schema: an undeclared key
// fails here, naming the file and line. A missing file is no error.
func (l *layers) read(path string) (config.Source, error) {
	f := config.NewFile(path)
	src, err := f.Preload()
	if err != nil {
		return nil, err
	}
	if src, err = l.schema.Admit(src); err != nil {
		return nil, err
	}
	l.files = append(l.files, configFile{path: path, found: src != nil, layer: f})
	return src, nil
}

// errorLine makes a startup error one line for stderr.
func errorLine(err error) string {
	var und *config.UndeclaredError
	if errors.As(err, &und) {
		return fmt.Sprintf("svc: %v", err)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Sprintf("svc: %v (check the file's permissions)", err)
	}
	return err.Error()
}
