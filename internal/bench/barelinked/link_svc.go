//go:build !link_etcd && !link_prometheus && !link_fx

package main

import _ "github.com/svc-dev/svc/svc" // linked and initialised, never called
