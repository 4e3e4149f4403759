package main

// Cluster DNS: dnsmasq on the bridge's gateway address, answering from a hosts file that this
// kubelet rewrites (then SIGHUP) whenever a Service or EndpointSlice changes — the records CoreDNS's
// kubernetes plugin serves from the same objects:
//   <svc>.<ns>.svc.<domain>            headless: every ready endpoint address; else the ClusterIPs
//   <hostname>.<svc>.<ns>.svc.<domain> headless: the endpoint with that hostname (a pod with
//                                      spec.hostname and spec.subdomain = <svc>)
// "Ready" is the EndpointSlice's condition, which the endpointslice controller sets for not-ready
// pods too when the Service has publishNotReadyAddresses. Names under the cluster domain that are
// not known get NXDOMAIN; other names are forwarded to the host's resolvers.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

type dnsServer struct {
	dir       string
	hostsFile string
	addr      string
	domain    string
	cmd       *exec.Cmd
	done      chan struct{}

	mu      sync.Mutex
	last    string
	pending bool
}

func startDNS(stateDir, addr, domain string, logQueries bool) (*dnsServer, error) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		return nil, fmt.Errorf("no dnsmasq on PATH (Debian package dnsmasq-base; scripts/install-deps.sh installs it)")
	}
	d := &dnsServer{dir: filepath.Join(stateDir, "dns"), addr: addr, domain: domain, done: make(chan struct{})}
	d.hostsFile = filepath.Join(d.dir, "hosts")
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(d.hostsFile, []byte("# no records yet\n"), 0o644); err != nil {
		return nil, err
	}
	args := []string{
		"--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--user=root", "--group=root",
		"--no-hosts", "--addn-hosts=" + d.hostsFile,
		"--listen-address=" + addr, "--bind-interfaces", "--port=53",
		"--local=/" + domain + "/", "--domain-needed", "--no-negcache",
		"--log-facility=" + filepath.Join(d.dir, "dnsmasq.log"),
	}
	if logQueries {
		args = append(args, "--log-queries")
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = os.Stderr, os.Stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := startLocked(d.cmd); err != nil {
		return nil, fmt.Errorf("dnsmasq: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	// dnsmasq exits at once when it cannot bind.
	select {
	case <-d.done:
		return nil, fmt.Errorf("dnsmasq exited at start (%v); see %s", d.cmd.ProcessState, filepath.Join(d.dir, "dnsmasq.log"))
	case <-time.After(300 * time.Millisecond):
	}
	resolv := fmt.Sprintf("nameserver %s\nsearch svc.%s %s\noptions ndots:5\n", addr, domain, domain)
	_ = writeFileAtomic(filepath.Join(stateDir, "resolv.conf"), []byte(resolv), 0o644)
	logf("dns: dnsmasq (pid %d) on %s:53 for %s; host-side resolv.conf: %s", d.cmd.Process.Pid, addr, domain,
		filepath.Join(stateDir, "resolv.conf"))
	return d, nil
}

func (d *dnsServer) stop() {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(3 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// update rewrites the records when they changed.
func (d *dnsServer) update(services []*v1.Service, slices []*discoveryv1.EndpointSlice) {
	byService := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range slices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name != "" {
			byService[s.Namespace+"/"+name] = append(byService[s.Namespace+"/"+name], s)
		}
	}
	records := map[string]map[string]bool{} // name -> addresses
	add := func(name, ip string) {
		if records[name] == nil {
			records[name] = map[string]bool{}
		}
		records[name][ip] = true
	}
	for _, svc := range services {
		fqdn := fmt.Sprintf("%s.%s.svc.%s", svc.Name, svc.Namespace, d.domain)
		if svc.Spec.Type == v1.ServiceTypeExternalName {
			continue
		}
		if svc.Spec.ClusterIP != v1.ClusterIPNone && svc.Spec.ClusterIP != "" {
			for _, ip := range svc.Spec.ClusterIPs {
				add(fqdn, ip)
			}
			continue
		}
		for _, sl := range byService[svc.Namespace+"/"+svc.Name] {
			if sl.AddressType != discoveryv1.AddressTypeIPv4 {
				continue
			}
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, ip := range ep.Addresses {
					add(fqdn, ip)
					if ep.Hostname != nil && *ep.Hostname != "" {
						add(*ep.Hostname+"."+fqdn, ip)
					}
				}
			}
		}
	}
	names := make([]string, 0, len(records))
	for n := range records {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# written by dispotify-testkubelet from Services and EndpointSlices\n")
	for _, n := range names {
		ips := make([]string, 0, len(records[n]))
		for ip := range records[n] {
			ips = append(ips, ip)
		}
		sort.Strings(ips)
		for _, ip := range ips {
			fmt.Fprintf(&b, "%s\t%s\n", ip, n)
		}
	}
	text := b.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	if text == d.last {
		return
	}
	if err := writeFileAtomic(d.hostsFile, []byte(text), 0o644); err != nil {
		logf("dns: write %s: %v", d.hostsFile, err)
		return
	}
	d.last = text
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	logf("dns: %d names", len(names))
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
