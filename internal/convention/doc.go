// Package convention is the one home of svc's conventions: the rule for
// service and environment names, the offset range and its step, the port
// arithmetic, the etcd key layout under svc/<environment>/, the names of the
// keys that address other services by convention, and the environment
// variable of a key. svc, registry, config, config/etcdsource and svcctl
// import it instead of writing any of these again.
//
// It imports only the standard library and builds nothing at init.
//
//	p := convention.PortsOf(20)                    // {Admin: 4020, Public: 8020, Private: 8021}
//	convention.ServicePrefix("prod", "orders")     // "svc/prod/services/orders/"
//	convention.EnvName("discovery.override.users") // "DISCOVERY_OVERRIDE_USERS"
package convention
