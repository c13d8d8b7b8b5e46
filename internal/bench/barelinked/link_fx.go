//go:build link_fx

package main

import _ "go.uber.org/fx"
