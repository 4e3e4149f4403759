// Command dispotify-lincheck checks that a history of calls to the Dispotify catalog is
// linearizable. The history format, the model and the exit codes are described in the
// package dispotify.io/e2e/linearizability and in ../../README.md.
package main

import (
	"os"

	"dispotify.io/e2e/linearizability"
)

func main() {
	os.Exit(linearizability.Main(os.Args[1:], os.Stdout, os.Stderr))
}
