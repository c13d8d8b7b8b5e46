// Package config is svc's layered key/value configuration.
//
// Keys are dotted lower-case paths ("public.port", "log.level"). A [Source]
// is one layer of key/value pairs; a [Store] resolves each key through its
// layers, highest precedence first, and remembers which layer a value came
// from, so an error or a display can name it:
//
//	conventions < JSON files < etcd (optional) < environment variables
//
// Values are strings in every layer, parsed on read by the typed getters
// ([Store.Int], [Store.Duration], [Store.Bool], ...), whose errors name the
// key, the value and the layer:
//
//	config: public.port = "eighty" (env PUBLIC_PORT): not an integer
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
// A Store is immutable and safe for concurrent use. Live reload (see
// [Watcher]) builds a new Store and swaps it in.
package config
