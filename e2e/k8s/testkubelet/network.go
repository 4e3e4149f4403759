package main

// Pod networking as a simple CNI bridge plugin would do it: a bridge on the host holding the
// gateway address (also the node's InternalIP and every pod's hostIP), one network namespace per
// pod with a veth pair, pod addresses from the pod CIDR; and dnsmasq on the gateway address as
// the cluster DNS.
//
// Several test kubelets may run on one machine: each takes its own index N (bridge tkbN, pod CIDR
// 10.244.N.0/24, network namespaces tkbN-*), held by a flock on /run/dispotify-testkubelet/N.lock
// for its lifetime. An index whose lock is free but whose bridge exists was left by a kubelet that
// died (SIGKILL): its namespaces and bridge are removed before the index is reused.

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const lockDir = "/run/dispotify-testkubelet"

type network struct {
	index    int
	bridge   string
	cidr     *net.IPNet
	gateway  net.IP
	lockFile *os.File
	created  bool // we created the bridge (always, unless --bridge named an existing one)

	mu   sync.Mutex
	used map[string]bool // pod IPs in use
	next int
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// addressInUse tells whether a host interface other than skip has an address inside cidr.
func addressInUse(cidr *net.IPNet, skip string) bool {
	ifs, _ := net.Interfaces()
	for _, itf := range ifs {
		if itf.Name == skip {
			continue
		}
		addrs, _ := itf.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (cidr.Contains(ipn.IP) || ipn.Contains(cidr.IP)) {
				return true
			}
		}
	}
	return false
}

func tryLock(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// cleanStale removes what a dead kubelet of index n left: its network namespaces and bridge.
func cleanStale(n int, what string) {
	prefix := fmt.Sprintf("tkb%d-", n)
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], prefix) {
				logf("network: removing %snetwork namespace %s", what, f[0])
				_ = run("ip", "netns", "del", f[0])
			}
		}
	}
	br := fmt.Sprintf("tkb%d", n)
	if linkExists(br) {
		logf("network: removing %sbridge %s", what, br)
		_ = run("ip", "link", "del", br)
	}
}

// setupNetwork takes an index and creates the bridge. cidrFlag, when set, names the pod CIDR
// (the bridge is still tkbN).
func setupNetwork(cidrFlag string) (*network, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, err
	}
	global, err := os.OpenFile(filepath.Join(lockDir, "global.lock"), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	defer global.Close()
	if err := syscall.Flock(int(global.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(global.Fd()), syscall.LOCK_UN)

	for n := 0; n < 256; n++ {
		lock, ok := tryLock(filepath.Join(lockDir, strconv.Itoa(n)+".lock"))
		if !ok {
			continue
		}
		cleanStale(n, "stale ")
		cidrText := fmt.Sprintf("10.244.%d.0/24", n)
		if cidrFlag != "" {
			cidrText = cidrFlag
		}
		_, cidr, err := net.ParseCIDR(cidrText)
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("--pod-cidr %q: %v", cidrText, err)
		}
		if addressInUse(cidr, "") {
			lock.Close()
			if cidrFlag != "" {
				return nil, fmt.Errorf("pod CIDR %s overlaps an address of this host", cidrText)
			}
			continue
		}
		gw := make(net.IP, len(cidr.IP.To4()))
		copy(gw, cidr.IP.To4())
		gw[3]++
		nw := &network{index: n, bridge: fmt.Sprintf("tkb%d", n), cidr: cidr, gateway: gw, lockFile: lock,
			used: map[string]bool{}, next: 2}
		ones, _ := cidr.Mask.Size()
		steps := [][]string{
			{"ip", "link", "add", nw.bridge, "type", "bridge"},
			{"ip", "addr", "add", fmt.Sprintf("%s/%d", gw, ones), "dev", nw.bridge},
			{"ip", "link", "set", nw.bridge, "up"},
		}
		for _, s := range steps {
			if err := run(s[0], s[1:]...); err != nil {
				_ = run("ip", "link", "del", nw.bridge)
				lock.Close()
				return nil, err
			}
		}
		nw.created = true
		logf("network: bridge %s %s/%d, pod CIDR %s", nw.bridge, gw, ones, cidr)
		return nw, nil
	}
	return nil, fmt.Errorf("no free pod network index (0..255)")
}

func (nw *network) teardown() {
	cleanStale(nw.index, "")
	if nw.lockFile != nil {
		nw.lockFile.Close()
	}
}

func (nw *network) prefixLen() int {
	ones, _ := nw.cidr.Mask.Size()
	return ones
}

// allocate gives the next free address, round robin (a deleted pod's address is not reused at
// once, which catches code that caches a peer's old address).
func (nw *network) allocate() (net.IP, error) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	ones, bits := nw.cidr.Mask.Size()
	size := 1 << (bits - ones)
	base := nw.cidr.IP.To4()
	for i := 0; i < size; i++ {
		off := nw.next
		nw.next++
		if nw.next >= size-1 {
			nw.next = 2
		}
		if off < 2 || off >= size-1 {
			continue
		}
		ip := make(net.IP, 4)
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += uint32(off)
		ip[0], ip[1], ip[2], ip[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		if !nw.used[ip.String()] {
			nw.used[ip.String()] = true
			return ip, nil
		}
	}
	return nil, fmt.Errorf("pod CIDR %s is full", nw.cidr)
}

func (nw *network) release(ip string) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	delete(nw.used, ip)
}

// sandbox is a pod's network namespace.
type sandbox struct {
	netns    string // name under /run/netns; empty for hostNetwork pods
	hostVeth string
	ip       string
	closers  []io.Closer // listeners inside the namespace (apiproxy.go)
}

func (sb *sandbox) netnsPath() string {
	if sb.netns == "" {
		return ""
	}
	return "/run/netns/" + sb.netns
}

func (nw *network) createSandbox(uid string) (*sandbox, error) {
	ip, err := nw.allocate()
	if err != nil {
		return nil, err
	}
	short := strings.ReplaceAll(uid, "-", "")
	if len(short) > 16 {
		short = short[:16]
	}
	h := fnv.New32a()
	h.Write([]byte(uid))
	// Interface names have at most 15 characters.
	sb := &sandbox{netns: fmt.Sprintf("tkb%d-%s", nw.index, short), ip: ip.String(),
		hostVeth: fmt.Sprintf("tkb%dv%x", nw.index, h.Sum32())}
	_ = run("ip", "netns", "del", sb.netns) // a leftover of the same pod
	_ = run("ip", "link", "del", sb.hostVeth)
	steps := [][]string{
		{"ip", "netns", "add", sb.netns},
		{"ip", "link", "add", sb.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", sb.netns},
		{"ip", "link", "set", sb.hostVeth, "master", nw.bridge, "up"},
		{"ip", "-n", sb.netns, "link", "set", "lo", "up"},
		{"ip", "-n", sb.netns, "addr", "add", fmt.Sprintf("%s/%d", ip, nw.prefixLen()), "dev", "eth0"},
		{"ip", "-n", sb.netns, "link", "set", "eth0", "up"},
		{"ip", "-n", sb.netns, "route", "add", "default", "via", nw.gateway.String()},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			nw.destroySandbox(sb)
			return nil, err
		}
	}
	return sb, nil
}

func (nw *network) destroySandbox(sb *sandbox) {
	if sb == nil {
		return
	}
	for _, c := range sb.closers {
		_ = c.Close()
	}
	sb.closers = nil
	if sb.netns != "" {
		_ = run("ip", "netns", "del", sb.netns)
		if linkExists(sb.hostVeth) {
			_ = run("ip", "link", "del", sb.hostVeth)
		}
		nw.release(sb.ip)
	}
}
