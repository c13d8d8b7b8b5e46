//go:build link_etcd

package main

import _ "go.etcd.io/etcd/client/v3"
