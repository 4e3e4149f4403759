package main

// The `kubernetes` Service of `default` inside each pod: a stand-in for kube-proxy, for that one
// Service only (other ClusterIPs stay unrouted). A pod's in-cluster client dials
// KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT (the Service's ClusterIP and port), but the API
// server listens on the host's loopback, which a pod cannot reach. So the ClusterIP is added to
// the pod's own loopback and a listener opened inside the pod's network namespace forwards every
// connection, byte for byte, to the API server. TLS passes through untouched: the client checks
// the API server's own certificate, whose names include the Service's ClusterIP.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

type apiProxy struct {
	target string // host:port of the API server as this process reaches it
}

// newAPIProxy forwards to the API server at `server` (the kubeconfig's https://host:port).
func newAPIProxy(server string) (*apiProxy, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("api server address %q: %v", server, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	return &apiProxy{target: host}, nil
}

// attach opens the listener of the Service's ClusterIP:port in the sandbox's namespace; Close stops it.
func (p *apiProxy) attach(sb *sandbox, clusterIP string, port int) (io.Closer, error) {
	if err := run("ip", "-n", sb.netns, "addr", "add", clusterIP+"/32", "dev", "lo"); err != nil {
		return nil, err
	}
	l, err := listenInNetns(sb.netnsPath(), net.JoinHostPort(clusterIP, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	go p.serve(l)
	return l, nil
}

func (p *apiProxy) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed with the sandbox
		}
		go p.forward(c)
	}
}

func (p *apiProxy) forward(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		logf("kubernetes Service proxy: dial %s: %v", p.target, err)
		return
	}
	defer s.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if t, ok := dst.(*net.TCPConn); ok {
			_ = t.CloseWrite()
		}
	}
	go pipe(s, c)
	go pipe(c, s)
	wg.Wait()
}

// listenInNetns opens a TCP listener inside the network namespace at `path`. The socket belongs
// to the namespace it was made in, so it keeps working from any thread afterwards. The work runs
// on a goroutine of its own, locked to its thread: if the thread cannot return to our namespace,
// the goroutine ends still locked and Go discards the thread rather than reuse it elsewhere.
func listenInNetns(path, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns %s: %v", path, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			if l != nil {
				l.Close()
			}
			done <- result{err: errors.Join(lerr, fmt.Errorf("setns back: %v", err))}
			return // still locked: the thread is discarded
		}
		runtime.UnlockOSThread()
		done <- result{l: l, err: lerr}
	}()
	r := <-done
	return r.l, r.err
}

// attachAPIService gives the sandbox the `kubernetes` Service, when the API server has published it.
func (k *kubelet) attachAPIService(sb *sandbox) error {
	if k.api == nil {
		return nil
	}
	for _, s := range k.services("default") {
		if s.Name != "kubernetes" || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == "None" || len(s.Spec.Ports) == 0 {
			continue
		}
		c, err := k.api.attach(sb, s.Spec.ClusterIP, int(s.Spec.Ports[0].Port))
		if err != nil {
			return fmt.Errorf("kubernetes Service in the pod: %v", err)
		}
		sb.closers = append(sb.closers, c)
	}
	return nil
}
