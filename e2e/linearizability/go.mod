module dispotify.io/e2e/linearizability

// 1.19: Debian 12's golang-go builds it (porcupine v1.3.1 itself asks for go 1.16).
go 1.19

require github.com/anishathalye/porcupine v1.3.1
