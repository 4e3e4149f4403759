package main

// Probes and lifecycle handlers, as the kubelet's prober runs them: from the host (the node's
// network) to the pod IP for httpGet and tcpSocket, inside the container's namespaces for exec.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func resolvePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no port named %q in container %s", p.StrVal, c.Name)
}

var probeTransport = &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	DisableKeepAlives: true,
	Proxy:             nil,
}

func httpCheck(ctx context.Context, h *v1.HTTPGetAction, podIP string, c *v1.Container) (bool, string) {
	port, err := resolvePort(h.Port, c)
	if err != nil {
		return false, err.Error()
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	if p, err := url.Parse(path); err == nil {
		u.Path, u.RawQuery = p.Path, p.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	req.Header.Set("Accept", "*/*")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
		} else {
			req.Header.Add(hd.Name, hd.Value)
		}
	}
	resp, err := (&http.Client{Transport: probeTransport}).Do(req)
	if err != nil {
		return false, fmt.Sprintf("Get %q: %v", u.String(), err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10*1024))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d (%s)", resp.StatusCode, strings.TrimSpace(string(body)))
}

func tcpCheck(ctx context.Context, t *v1.TCPSocketAction, podIP string, c *v1.Container) (bool, string) {
	port, err := resolvePort(t.Port, c)
	if err != nil {
		return false, err.Error()
	}
	host := t.Host
	if host == "" {
		host = podIP
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false, err.Error()
	}
	conn.Close()
	return true, ""
}

// execIn runs a command in the container's network, mount and UTS namespaces, with its env.
func execIn(ctx context.Context, pid int, env *envList, command []string) (bool, string) {
	if len(command) == 0 {
		return false, "empty command"
	}
	args := append([]string{"--target", strconv.Itoa(pid), "--net", "--mount", "--uts", "--"}, command...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	if env != nil {
		cmd.Env = env.environ()
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, fmt.Sprintf("command %q: %v: %s", strings.Join(command, " "), err, strings.TrimSpace(string(out)))
	}
	return true, ""
}

func (k *kubelet) runProbe(ctx context.Context, p *v1.Probe, podIP string, c *v1.Container, pid int, env *envList) (bool, string) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		return httpCheck(ctx, p.HTTPGet, podIP, c)
	case p.TCPSocket != nil:
		return tcpCheck(ctx, p.TCPSocket, podIP, c)
	case p.Exec != nil:
		return execIn(ctx, pid, env, p.Exec.Command)
	case p.GRPC != nil:
		return false, "grpc probes are not supported by the test kubelet"
	}
	return false, "probe has no handler"
}

func (k *kubelet) runHandler(ctx context.Context, h *v1.LifecycleHandler, podIP string, c *v1.Container, pid int, env *envList) error {
	var ok bool
	var msg string
	switch {
	case h.HTTPGet != nil:
		ok, msg = httpCheck(ctx, h.HTTPGet, podIP, c)
	case h.Exec != nil:
		ok, msg = execIn(ctx, pid, env, h.Exec.Command)
	case h.Sleep != nil:
		select {
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		case <-ctx.Done():
		}
		return nil
	default:
		return nil
	}
	if !ok {
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// probeLoop runs one probe of one container instance with the spec's delay, period and
// thresholds, and reports transitions to the pod worker.
// Everything it reads is given by the worker goroutine (no shared state).
type probeTarget struct {
	c       *ctr
	gen     int
	pod     *v1.Pod
	podIP   string
	spec    v1.Container
	pid     int
	env     *envList
	started time.Time
}

func (w *podWorker) probeTarget(c *ctr, gen int) probeTarget {
	return probeTarget{c: c, gen: gen, pod: w.pod, podIP: w.sb.ip, spec: c.spec, pid: c.pid, env: c.env, started: c.startedAt}
}

func (w *podWorker) probeLoop(ctx context.Context, pt probeTarget, kind string, p *v1.Probe) {
	c, gen := pt.c, pt.gen
	period := time.Duration(p.PeriodSeconds) * time.Second
	if period <= 0 {
		period = 10 * time.Second
	}
	success, failure := int(p.SuccessThreshold), int(p.FailureThreshold)
	if success <= 0 {
		success = 1
	}
	if failure <= 0 {
		failure = 3
	}
	podIP, spec, pid, env, started := pt.podIP, pt.spec, pt.pid, pt.env, pt.started
	select {
	case <-time.After(time.Until(started.Add(time.Duration(p.InitialDelaySeconds) * time.Second))):
	case <-ctx.Done():
		return
	}
	name := map[string]string{"startup": "Startup", "readiness": "Readiness", "liveness": "Liveness"}[kind]
	ready := false
	succ, fail := 0, 0
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		ok, msg := w.k.runProbe(ctx, p, podIP, &spec, pid, env)
		if ctx.Err() != nil {
			return
		}
		if ok {
			succ, fail = succ+1, 0
		} else {
			succ, fail = 0, fail+1
			w.k.recorder.Eventf(pt.pod, v1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", name, msg)
		}
		switch kind {
		case "startup":
			if succ >= success {
				w.send(workerEvent{c: c, gen: gen, kind: "startup-ok"})
				return
			}
			if fail >= failure {
				w.send(workerEvent{c: c, gen: gen, kind: "startup-failed", detail: msg})
				return
			}
		case "liveness":
			if fail >= failure {
				w.send(workerEvent{c: c, gen: gen, kind: "liveness-failed", detail: msg})
				return
			}
		case "readiness":
			if !ready && succ >= success {
				ready = true
				w.send(workerEvent{c: c, gen: gen, kind: "ready"})
			} else if ready && fail >= failure {
				ready = false
				w.send(workerEvent{c: c, gen: gen, kind: "unready", detail: msg})
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
