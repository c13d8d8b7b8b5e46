// Package config is svc's layered key/value configuration.
//
// Keys are dotted lower-case paths ("public.port", "log.level"). A [Source]
// is one layer of key/value pairs; a [Store] resolves each key through its
// layers, highest precedence first, and remembers which layer a value came
// from, so an error or a display can name it:
//
//	conventions < JSON files < etcd (optional) < environment variables
//
// svc puts two more layers on top: the values of svc.WithValues (layer
// "option", for tests) and an [Overrides] layer (layer "admin"), the values
// an operator sets on the running process through the admin port, above
// every other layer until they expire or are removed. A [Schema] declares
// every key (type, default, doc, secret, live); a key nobody declared is
// refused with the nearest declared key suggested.
//
// Values are strings in every layer, parsed on read by the typed getters
// ([Store.Int], [Store.Duration], [Store.Bool], ...), whose errors name the
// key, the value and the layer:
//
//	config: public.port = "eighty" (from env PUBLIC_PORT): not an integer
//
// JSON files are flattened: {"public":{"port":9000}} is the key public.port
// with the value "9000". Malformed JSON is reported with the file and
// line:column of the error.
//
// The environment variable of a key is the key upper-cased with '.' and '-'
// turned into '_' ([EnvName]). The environment layer is consulted for every
// key a lower layer or a declaration knows, and for any key a caller looks
// up, so a key can be set from the environment alone.
//
// # Live configuration
//
// A Store is immutable and safe for concurrent use. A [Live] store follows
// layers that change: it is built from [Layer]s (fixed ones such as a [*Map]
// or [Env], [*File]s re-read from disk, and the etcd layer of package
// config/etcdsource), and each [Live.Reload] builds a new Store and swaps it
// in. [Live.Start] reloads when a watched file or the etcd layer changes.
// A reload never takes bad input: a value that fails its type or a
// validator, or a file that no longer parses, is rejected and the previous
// one stays in force; a startup-only key ([Live.Static]) keeps its value
// until the next start. Service code reads changing values through a
// [Var], whose Get is lock-free, or subscribes with [Live.OnChange]:
//
//	live, err := config.NewLive(config.LiveOptions{Logger: log, Metrics: reg},
//		conventions, config.NewFile("config/orders.json"), etcdLayer, config.NewEnv(os.LookupEnv))
//	...
//	live.Static("public.port", "etcd.*")
//	timeout, err := config.NewVar(live, "orders.timeout", 2*time.Second, config.ParseDuration, nil)
//	...
//	ctx, cancel := context.WithTimeout(ctx, timeout.Get())
package config
