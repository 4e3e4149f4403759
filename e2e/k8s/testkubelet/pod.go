package main

// One goroutine per pod (by UID) owns the pod's sandbox, volumes and containers; the rest of the
// kubelet talks to it through channels: the latest pod object, "gone from the API", "a ConfigMap
// or Secret changed", and the events of its own processes and probes.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Processes are started from one OS thread that never exits: Pdeathsig (the pods die with the
// kubelet, even on SIGKILL) fires when the starting *thread* exits.
var spawnCh = make(chan spawnReq)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startSpawner() {
	go func() {
		runtime.LockOSThread()
		for r := range spawnCh {
			r.done <- r.cmd.Start()
		}
	}()
}

func startLocked(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd, done}
	return <-done
}

type ctr struct {
	spec                v1.Container
	init                bool
	sidecar             bool // an init container with restartPolicy Always
	pidFile             string
	logFile             string
	binary              string
	gen                 int
	pid                 int
	running             bool
	exited              chan struct{} // closed when the current process exited
	startedAt           time.Time
	lastTerm            *v1.ContainerStateTerminated
	prevTerm            *v1.ContainerStateTerminated
	everRan             bool
	succeeded           bool // an init container that completed
	restartCount        int32
	waitReason, waitMsg string
	backoff             time.Duration // the next restart's delay
	delay               time.Duration // this restart's delay
	nextStart           time.Time
	started             bool
	ready               bool
	probeCtx            context.Context
	probeCancel         context.CancelFunc
	containerID         string
	env                 *envList
}

type workerEvent struct {
	c      *ctr
	gen    int
	kind   string // exit, startup-ok, startup-failed, ready, unready, liveness-failed
	state  *os.ProcessState
	detail string
}

type podWorker struct {
	k        *kubelet
	uid      types.UID
	ns       string
	key      string // namespace/name
	updates  chan *v1.Pod
	gone     chan struct{}
	goneOnce sync.Once
	refresh  chan struct{}
	events   chan workerEvent
	done     chan struct{} // closed when run returns

	pod        *v1.Pod
	dir        string // <state-dir>/pods/<ns>_<name>: the test's hooks (pid, log)
	sb         *sandbox
	volumes    map[string]*volume
	tokens     map[string]map[string]fileEntry
	startTime  metav1.Time
	inits      []*ctr
	ctrs       []*ctr
	sandboxErr string
	lastStatus *v1.PodStatus
	wake       time.Time
	hostname   string // the pod's UTS hostname
	terminal   bool   // stopped for good (deleted): report terminated containers
}

func newPodWorker(k *kubelet, pod *v1.Pod) *podWorker {
	w := &podWorker{k: k, uid: pod.UID, ns: pod.Namespace, key: pod.Namespace + "/" + pod.Name,
		updates: make(chan *v1.Pod, 1), gone: make(chan struct{}), refresh: make(chan struct{}, 1),
		events: make(chan workerEvent, 64), done: make(chan struct{}), pod: pod, tokens: map[string]map[string]fileEntry{},
		dir: filepath.Join(k.opts.stateDir, "pods", pod.Namespace+"_"+pod.Name)}
	for i, c := range pod.Spec.InitContainers {
		x := &ctr{spec: c, init: true, sidecar: c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways}
		x.pidFile = filepath.Join(w.dir, "pid."+c.Name)
		x.logFile = filepath.Join(w.dir, "log."+c.Name)
		_ = i
		w.inits = append(w.inits, x)
	}
	for i, c := range pod.Spec.Containers {
		x := &ctr{spec: c}
		if i == 0 {
			x.pidFile, x.logFile = filepath.Join(w.dir, "pid"), filepath.Join(w.dir, "log")
		} else {
			x.pidFile, x.logFile = filepath.Join(w.dir, "pid."+c.Name), filepath.Join(w.dir, "log."+c.Name)
		}
		w.ctrs = append(w.ctrs, x)
	}
	// A pod this kubelet finds running in the API (the kubelet restarted): its containers start
	// again, counted as restarts.
	for _, cs := range append(append([]v1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		for _, x := range w.all() {
			if x.spec.Name == cs.Name {
				x.restartCount = cs.RestartCount
				if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
					x.everRan = true
				}
				if x.init && cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
					x.succeeded = true
				}
			}
		}
	}
	return w
}

func (w *podWorker) all() []*ctr { return append(append([]*ctr{}, w.inits...), w.ctrs...) }

func (w *podWorker) volumeRoot() string {
	return filepath.Join(w.k.opts.stateDir, "pod-volumes", string(w.uid))
}

func (w *podWorker) facts() podFacts {
	f := podFacts{hostIP: w.k.nodeIP, nodeCapacity: w.k.capacity}
	if w.sb != nil {
		f.podIP = w.sb.ip
	}
	return f
}

func (w *podWorker) update(pod *v1.Pod) {
	for {
		select {
		case w.updates <- pod:
			return
		default:
		}
		select {
		case <-w.updates:
		default:
		}
	}
}

func (w *podWorker) markGone() { w.goneOnce.Do(func() { close(w.gone) }) }

func (w *podWorker) isGone() bool {
	select {
	case <-w.gone:
		return true
	default:
		return false
	}
}

func (w *podWorker) send(ev workerEvent) {
	select {
	case w.events <- ev:
	case <-w.done:
	}
}

func (w *podWorker) run() {
	defer close(w.done)
	logf("%s: admitted (uid %s)", w.key, w.uid)
	_ = os.MkdirAll(w.dir, 0o755)
	for {
		if w.k.ctx.Err() != nil {
			w.shutdown()
			return
		}
		if w.isGone() || w.pod.DeletionTimestamp != nil {
			w.terminate()
			return
		}
		w.sync()
		var timer <-chan time.Time
		if !w.wake.IsZero() {
			d := time.Until(w.wake)
			if d < 0 {
				d = 0
			}
			timer = time.After(d)
		}
		select {
		case p := <-w.updates:
			if !olderVersion(p, w.pod) {
				w.pod = p
			}
		case <-w.gone:
		case ev := <-w.events:
			w.handle(ev)
		case <-w.refresh:
			if w.volumes != nil {
				w.refreshVolumes(w.pod)
			}
		case <-timer:
		case <-w.k.ctx.Done():
		}
	}
}

func (w *podWorker) setWake(t time.Time) {
	if w.wake.IsZero() || t.Before(w.wake) {
		w.wake = t
	}
}

// sync brings the pod one step closer to its spec, then writes its status.
func (w *podWorker) sync() {
	w.wake = time.Time{}
	defer w.writeStatus()
	if w.startTime.IsZero() {
		w.startTime = metav1.Now()
	}
	if w.sb == nil {
		if err := w.createSandbox(); err != nil {
			if w.sandboxErr != err.Error() {
				logf("%s: sandbox: %v", w.key, err)
				w.k.recorder.Eventf(w.pod, v1.EventTypeWarning, "FailedCreatePodSandBox", "%v", err)
			}
			w.sandboxErr = err.Error()
			w.setWake(time.Now().Add(2 * time.Second))
			return
		}
	}
	if w.volumes == nil {
		vols, err := w.prepareVolumes(w.pod)
		if err != nil {
			if w.sandboxErr != err.Error() {
				logf("%s: volumes: %v", w.key, err)
				w.k.recorder.Eventf(w.pod, v1.EventTypeWarning, "FailedMount", "%v", err)
			}
			w.sandboxErr = err.Error()
			w.setWake(time.Now().Add(2 * time.Second))
			return
		}
		w.volumes = vols
		w.sandboxErr = ""
	} else {
		w.refreshVolumes(w.pod) // labels and annotations for downwardAPI
	}
	policy := w.pod.Spec.RestartPolicy
	// Init containers, one at a time; sidecars keep running.
	for _, c := range w.inits {
		if c.succeeded && !c.sidecar {
			continue
		}
		if c.running {
			if c.sidecar && c.started {
				continue
			}
			return
		}
		if c.sidecar {
			if w.maybeStart(c, v1.RestartPolicyAlways) {
				continue
			}
			return
		}
		if c.lastTerm != nil && c.lastTerm.ExitCode != 0 && policy == v1.RestartPolicyNever {
			return // the pod failed
		}
		w.maybeStart(c, v1.RestartPolicyOnFailure)
		return
	}
	for _, c := range w.ctrs {
		if !c.running {
			w.maybeStart(c, policy)
		}
	}
}

// maybeStart starts c if its restart policy allows and its back-off has passed; it tells whether
// the container runs.
func (w *podWorker) maybeStart(c *ctr, policy v1.RestartPolicy) bool {
	if c.lastTerm != nil {
		switch {
		case policy == v1.RestartPolicyNever:
			return false
		case policy == v1.RestartPolicyOnFailure && c.lastTerm.ExitCode == 0:
			return false
		}
	}
	if now := time.Now(); now.Before(c.nextStart) {
		w.setWake(c.nextStart)
		return false
	}
	if err := w.start(c); err != nil {
		w.setWake(c.nextStart)
		return false
	}
	return true
}

func (w *podWorker) createSandbox() error {
	pod := w.pod
	var sb *sandbox
	if pod.Spec.HostNetwork {
		sb = &sandbox{ip: w.k.nodeIP}
	} else {
		var err error
		if sb, err = w.k.net.createSandbox(string(pod.UID)); err != nil {
			return err
		}
		if err = w.k.attachAPIService(sb); err != nil {
			w.k.net.destroySandbox(sb)
			return err
		}
	}
	etc := filepath.Join(w.volumeRoot(), "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	domain := w.k.opts.clusterDomain
	fqdn := ""
	if pod.Spec.Subdomain != "" {
		fqdn = fmt.Sprintf("%s.%s.%s.svc.%s", hostname, pod.Spec.Subdomain, pod.Namespace, domain)
	}
	var hosts strings.Builder
	if pod.Spec.HostNetwork {
		data, _ := os.ReadFile("/etc/hosts")
		hosts.Write(data)
	} else {
		hosts.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
		if fqdn != "" {
			fmt.Fprintf(&hosts, "%s\t%s\t%s\n", sb.ip, fqdn, hostname)
		} else {
			fmt.Fprintf(&hosts, "%s\t%s\n", sb.ip, hostname)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		hosts.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&hosts, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	nodeHostname, _ := os.Hostname()
	uts := hostname
	if pod.Spec.HostNetwork {
		uts = nodeHostname
	} else if pod.Spec.SetHostnameAsFQDN != nil && *pod.Spec.SetHostnameAsFQDN && fqdn != "" {
		uts = fqdn
	}
	w.hostname = uts
	files := map[string]string{"hosts": hosts.String(), "hostname": uts + "\n", "resolv.conf": w.resolvConf()}
	for name, content := range files {
		if err := writeFileAtomic(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	w.sb = sb
	if sb.netns != "" {
		logf("%s: sandbox %s, IP %s", w.key, sb.netns, sb.ip)
	}
	return nil
}

// resolvConf follows the pod's dnsPolicy and dnsConfig (pkg/kubelet/network/dns).
func (w *podWorker) resolvConf() string {
	pod := w.pod
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	if policy == v1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = v1.DNSDefault
	}
	var servers, search, options []string
	switch policy {
	case v1.DNSClusterFirst, v1.DNSClusterFirstWithHostNet:
		d := w.k.opts.clusterDomain
		servers = []string{w.k.nodeIP}
		search = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		options = []string{"ndots:5"}
	case v1.DNSDefault:
		data, _ := os.ReadFile("/etc/resolv.conf")
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "nameserver":
				servers = append(servers, f[1])
			case "search":
				search = append(search, f[1:]...)
			case "options":
				options = append(options, f[1:]...)
			}
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		search = append(search, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			replaced := false
			for i, cur := range options {
				if strings.SplitN(cur, ":", 2)[0] == o.Name {
					options[i], replaced = opt, true
				}
			}
			if !replaced {
				options = append(options, opt)
			}
		}
	}
	var b strings.Builder
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String()
}

// resolveImage maps an image to its local entrypoint: --image REPO=PATH matches the repository
// with any tag or digest (and a docker.io/ or docker.io/library/ prefix).
func (k *kubelet) resolveImage(image string) (string, bool) {
	repo := imageRepo(image)
	for _, cand := range []string{repo, strings.TrimPrefix(repo, "docker.io/"), strings.TrimPrefix(repo, "docker.io/library/")} {
		if p, ok := k.opts.images[cand]; ok {
			return p, true
		}
	}
	return "", false
}

// imageRepo strips the tag and digest.
func imageRepo(image string) string {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo
}

func (w *podWorker) waiting(c *ctr, reason, msg string, retry time.Duration) error {
	if c.waitReason != reason || c.waitMsg != msg {
		logf("%s: container %s: %s: %s", w.key, c.spec.Name, reason, msg)
		w.k.recorder.Eventf(w.pod, v1.EventTypeWarning, "Failed", "Error: %s: %s", reason, msg)
	}
	c.waitReason, c.waitMsg = reason, msg
	c.nextStart = time.Now().Add(retry)
	return fmt.Errorf("%s", msg)
}

func (w *podWorker) start(c *ctr) error {
	pod := w.pod
	entry, ok := w.k.resolveImage(c.spec.Image)
	if !ok {
		return w.waiting(c, "ErrImagePull", fmt.Sprintf("image %q is not known to the test kubelet (give --image %s=/path/to/binary)",
			c.spec.Image, imageRepo(c.spec.Image)), 5*time.Second)
	}
	env, err := containerEnv(pod, &c.spec, w.facts(), w.k, w.hostname)
	if err != nil {
		return w.waiting(c, "CreateContainerConfigError", err.Error(), 2*time.Second)
	}
	// Command line: command replaces the image's entrypoint, args its (empty) CMD.
	var argv []string
	for _, a := range c.spec.Command {
		argv = append(argv, expand(a, env.lookup))
	}
	if len(argv) == 0 {
		if entry == "" {
			return w.waiting(c, "CreateContainerError", "no command given and the image has no entrypoint", 5*time.Second)
		}
		argv = []string{entry}
	}
	for _, a := range c.spec.Args {
		argv = append(argv, expand(a, env.lookup))
	}
	path := argv[0]
	switch {
	case entry != "" && (path == entry || filepath.Base(path) == filepath.Base(entry)):
		path = entry // the image's binary, wherever the pod spec says it lives
	case strings.Contains(path, "/"):
	default:
		lp, err := exec.LookPath(path)
		if err != nil {
			return w.waiting(c, "CreateContainerError", fmt.Sprintf("executable %q not found in $PATH", path), 5*time.Second)
		}
		path = lp
	}
	c.binary = path
	mounts, err := w.mountsFor(&c.spec, env)
	if err != nil {
		return w.waiting(c, "CreateContainerConfigError", err.Error(), 2*time.Second)
	}
	spec := execSpec{NetNS: w.sb.netnsPath(), Hostname: w.hostname, Mounts: mounts, WorkingDir: c.spec.WorkingDir,
		Path: path, Argv: argv, Env: env.environ(), ParentPID: os.Getpid()}
	if pod.Spec.HostNetwork {
		spec.Hostname = ""
	}
	// Security context: the container's over the pod's; the image's user when neither says.
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &v1.PodSecurityContext{}
	}
	csc := c.spec.SecurityContext
	if csc == nil {
		csc = &v1.SecurityContext{}
	}
	uid := ptr.To(w.k.opts.imageUser)
	if psc.RunAsUser != nil {
		uid = psc.RunAsUser
	}
	if csc.RunAsUser != nil {
		uid = csc.RunAsUser
	}
	gid := ptr.To[int64](0)
	if psc.RunAsGroup != nil {
		gid = psc.RunAsGroup
	}
	if csc.RunAsGroup != nil {
		gid = csc.RunAsGroup
	}
	nonRoot := psc.RunAsNonRoot
	if csc.RunAsNonRoot != nil {
		nonRoot = csc.RunAsNonRoot
	}
	if nonRoot != nil && *nonRoot && *uid == 0 {
		return w.waiting(c, "CreateContainerConfigError", "container has runAsNonRoot and image will run as root", 5*time.Second)
	}
	spec.UID, spec.GID = uid, gid
	spec.Groups = append(spec.Groups, psc.SupplementalGroups...)
	if psc.FSGroup != nil {
		spec.Groups = append(spec.Groups, *psc.FSGroup)
	}
	spec.ReadOnlyRoot = csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem
	spec.NoNewPrivs = csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation
	specJSON, _ := json.Marshal(spec)

	log, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return w.waiting(c, "CreateContainerError", err.Error(), 2*time.Second)
	}
	defer log.Close()
	restart := c.everRan
	fmt.Fprintf(log, "==== testkubelet %s: container %s of pod %s (uid %s) starts: %s\n",
		time.Now().UTC().Format(time.RFC3339Nano), c.spec.Name, w.key, pod.UID, strings.Join(argv, " "))
	errR, errW, err := os.Pipe()
	if err != nil {
		return w.waiting(c, "CreateContainerError", err.Error(), 2*time.Second)
	}
	cmd := exec.Command("/proc/self/exe", "__container", string(specJSON))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{errW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = startLocked(cmd)
	errW.Close()
	if err != nil {
		errR.Close()
		return w.waiting(c, "CreateContainerError", err.Error(), 2*time.Second)
	}
	msg, _ := io.ReadAll(errR) // EOF at the exec (close-on-exec) or at the helper's exit
	errR.Close()
	if restart {
		c.restartCount++
	}
	c.everRan = true
	c.waitReason, c.waitMsg = "", ""
	c.gen++
	gen := c.gen
	now := time.Now()
	c.containerID = fmt.Sprintf("testkubelet://%s-%s-%d", pod.UID, c.spec.Name, c.restartCount)
	if len(msg) > 0 {
		_ = cmd.Wait()
		w.recordExit(c, now, 128, 0, "StartError", string(msg))
		w.k.recorder.Eventf(pod, v1.EventTypeWarning, "Failed", "Error: failed to start container %q: %s", c.spec.Name, msg)
		return fmt.Errorf("%s", msg)
	}
	c.pid = cmd.Process.Pid
	c.running = true
	c.startedAt = now
	c.started, c.ready = false, false
	c.exited = make(chan struct{})
	c.env = env
	exited := c.exited
	_ = writeFileAtomic(c.pidFile, []byte(strconv.Itoa(c.pid)+"\n"), 0o644)
	go func() {
		_ = cmd.Wait()
		// The container's other processes go with it (a cgroup would kill them all).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(exited)
		w.send(workerEvent{c: c, gen: gen, kind: "exit", state: cmd.ProcessState})
	}()
	logf("%s: container %s started (pid %d, restart %d)", w.key, c.spec.Name, c.pid, c.restartCount)
	w.k.recorder.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s", c.spec.Name)
	ctx, cancel := context.WithCancel(w.k.ctx)
	c.probeCtx, c.probeCancel = ctx, cancel
	if c.spec.StartupProbe != nil {
		go w.probeLoop(ctx, w.probeTarget(c, gen), "startup", c.spec.StartupProbe)
	} else {
		w.afterStarted(ctx, c, gen)
	}
	return nil
}

// afterStarted: the startup probe passed (or there is none): liveness and readiness begin.
func (w *podWorker) afterStarted(ctx context.Context, c *ctr, gen int) {
	c.started = true
	if c.spec.ReadinessProbe == nil {
		c.ready = true
	} else {
		go w.probeLoop(ctx, w.probeTarget(c, gen), "readiness", c.spec.ReadinessProbe)
	}
	if c.spec.LivenessProbe != nil {
		go w.probeLoop(ctx, w.probeTarget(c, gen), "liveness", c.spec.LivenessProbe)
	}
}

func (w *podWorker) recordExit(c *ctr, startedAt time.Time, code int32, signal int32, reason, msg string) {
	now := time.Now()
	c.prevTerm = c.lastTerm
	c.lastTerm = &v1.ContainerStateTerminated{ExitCode: code, Signal: signal, Reason: reason, Message: msg,
		StartedAt: metav1.NewTime(startedAt), FinishedAt: metav1.NewTime(now), ContainerID: c.containerID}
	if c.init && code == 0 {
		c.succeeded = true
	}
	// Back-off (the kubelet's: a first restart at once, then doubling; reset after a run twice
	// as long as the cap).
	if now.Sub(startedAt) >= 2*w.k.opts.maxBackoff {
		c.backoff = 0
	}
	c.delay = c.backoff
	c.nextStart = now.Add(c.backoff)
	switch {
	case c.backoff == 0:
		c.backoff = w.k.opts.initialBackoff
	default:
		c.backoff *= 2
	}
	if c.backoff > w.k.opts.maxBackoff {
		c.backoff = w.k.opts.maxBackoff
	}
}

func (w *podWorker) handle(ev workerEvent) {
	c := ev.c
	if ev.gen != c.gen {
		return
	}
	switch ev.kind {
	case "exit":
		if c.probeCancel != nil {
			c.probeCancel()
		}
		c.running, c.ready, c.started = false, false, false
		if b, err := os.ReadFile(c.pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(c.pid) {
			_ = os.Remove(c.pidFile)
		}
		code, signal := int32(0), int32(0)
		if ws, ok := ev.state.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				signal = int32(ws.Signal())
				code = 128 + signal
			} else {
				code = int32(ws.ExitStatus())
			}
		}
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		w.recordExit(c, c.startedAt, code, signal, reason, "")
		logf("%s: container %s exited (code %d)", w.key, c.spec.Name, code)
		if c.nextStart.After(time.Now()) && w.willRestart(c) {
			w.k.recorder.Eventf(w.pod, v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.spec.Name, w.key)
		}
	case "startup-ok":
		logf("%s: container %s started (startup probe)", w.key, c.spec.Name)
		w.afterStarted(c.probeCtx, c, ev.gen)
	case "ready", "unready":
		c.ready = ev.kind == "ready"
		logf("%s: container %s %s", w.key, c.spec.Name, map[bool]string{true: "ready", false: "not ready"}[c.ready])
	case "startup-failed", "liveness-failed":
		probe := "Liveness"
		if ev.kind == "startup-failed" {
			probe = "Startup"
		}
		logf("%s: container %s failed its %s probe, restarting", w.key, c.spec.Name, strings.ToLower(probe))
		w.k.recorder.Eventf(w.pod, v1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.spec.Name, strings.ToLower(probe))
		grace := w.gracePeriod()
		p := c.spec.LivenessProbe
		if ev.kind == "startup-failed" {
			p = c.spec.StartupProbe
		}
		if p != nil && p.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
		}
		c.ready = false
		w.kill(c, grace)
	}
}

func (w *podWorker) willRestart(c *ctr) bool {
	switch w.pod.Spec.RestartPolicy {
	case v1.RestartPolicyNever:
		return c.sidecar
	case v1.RestartPolicyOnFailure:
		return c.sidecar || c.lastTerm == nil || c.lastTerm.ExitCode != 0
	}
	return true
}

func (w *podWorker) gracePeriod() time.Duration {
	g := int64(30)
	if w.pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *w.pod.Spec.TerminationGracePeriodSeconds
	}
	return time.Duration(g) * time.Second
}

// kill sends SIGTERM to the container's process, then SIGKILL to its process group after grace,
// without blocking the worker (the exit arrives as an event).
func (w *podWorker) kill(c *ctr, grace time.Duration) {
	if !c.running {
		return
	}
	pid, exited := c.pid, c.exited
	_ = syscall.Kill(pid, syscall.SIGTERM)
	go func() {
		select {
		case <-exited:
		case <-time.After(grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
}

// stopAll runs the preStop hooks, sends SIGTERM, waits up to grace for every container, then
// SIGKILLs what is left, and waits for the exits (handling them as events).
func (w *podWorker) stopAll(grace time.Duration, hooks bool) {
	deadline := time.Now().Add(grace)
	var wg sync.WaitGroup
	for _, c := range w.all() {
		if !c.running {
			continue
		}
		if c.probeCancel != nil {
			c.probeCancel()
		}
		wg.Add(1)
		go func(c *ctr, pid int, env *envList) {
			defer wg.Done()
			if hooks && c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				if err := w.k.runHandler(ctx, c.spec.Lifecycle.PreStop, w.sb.ip, &c.spec, pid, env); err != nil {
					logf("%s: preStop of %s: %v", w.key, c.spec.Name, err)
				}
				cancel()
			}
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}(c, c.pid, c.env)
	}
	wg.Wait()
	for {
		running := 0
		for _, c := range w.all() {
			if c.running {
				running++
			}
		}
		if running == 0 {
			return
		}
		var timer <-chan time.Time
		if d := time.Until(deadline); d > 0 {
			timer = time.After(d)
		} else {
			for _, c := range w.all() {
				if c.running {
					logf("%s: container %s did not stop in %s: SIGKILL", w.key, c.spec.Name, grace)
					_ = syscall.Kill(-c.pid, syscall.SIGKILL)
				}
			}
			deadline = time.Now().Add(time.Hour)
		}
		select {
		case ev := <-w.events:
			if ev.kind == "exit" {
				w.handle(ev)
			}
		case <-timer:
		}
	}
}

// terminate ends a deleted pod: stop its containers within the grace period, report them
// terminated with the pod in a terminal phase, release its sandbox and volumes, and delete the pod
// (grace 0, this UID only) — the kubelet's part of a graceful deletion.
func (w *podWorker) terminate() {
	grace := w.gracePeriod()
	if w.pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*w.pod.DeletionGracePeriodSeconds) * time.Second
	}
	if grace < 2*time.Second && w.isGone() {
		grace = 2 * time.Second // a force-deleted pod still gets the kubelet's minimum
	}
	anyRunning := false
	for _, c := range w.all() {
		anyRunning = anyRunning || c.running
	}
	if anyRunning {
		logf("%s: stopping (grace %s)", w.key, grace)
		for _, c := range w.ctrs {
			if c.running {
				w.k.recorder.Eventf(w.pod, v1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
			}
		}
	}
	w.stopAll(grace, true)
	w.terminal = true
	if !w.isGone() {
		w.writeStatus()
	}
	w.release()
	if !w.isGone() {
		if err := w.k.finishDeletion(w.pod); err != nil {
			logf("%s: delete: %v", w.key, err)
			w.k.queue.AddAfter("pod:"+w.key, time.Second)
		}
	} else {
		logf("%s: gone", w.key)
	}
}

// shutdown: the kubelet stops; its pods stop with it (no API calls: the control plane may be
// gone already).
func (w *podWorker) shutdown() {
	grace := w.gracePeriod()
	if grace > w.k.opts.shutdownGrace {
		grace = w.k.opts.shutdownGrace
	}
	w.stopAll(grace, false)
	w.release()
}

func (w *podWorker) release() {
	for _, c := range w.all() {
		if b, err := os.ReadFile(c.pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(c.pid) {
			_ = os.Remove(c.pidFile)
		}
	}
	if w.sb != nil {
		w.k.net.destroySandbox(w.sb)
	}
	_ = os.RemoveAll(w.volumeRoot())
}

// Status ------------------------------------------------------------------------------------

func (w *podWorker) containerStatus(c *ctr, initDone bool) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: c.spec.Name, Image: c.spec.Image, RestartCount: c.restartCount,
		Ready: c.running && c.ready, Started: ptr.To(c.running && c.started)}
	if c.init && !c.sidecar && c.succeeded {
		cs.Ready = true // as the kubelet reports a completed init container
	}
	if c.binary != "" {
		cs.ImageID = "testkubelet://" + c.binary
	}
	if c.everRan {
		cs.ContainerID = c.containerID
	}
	terminal := c.lastTerm != nil && (w.terminal || !w.willRestart(c) || (c.init && c.succeeded && !c.sidecar))
	switch {
	case c.running:
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
		if c.lastTerm != nil {
			cs.LastTerminationState.Terminated = c.lastTerm
		}
	case terminal:
		cs.State.Terminated = c.lastTerm
		if c.prevTerm != nil {
			cs.LastTerminationState.Terminated = c.prevTerm
		}
	default:
		reason, msg := c.waitReason, c.waitMsg
		if reason == "" {
			switch {
			case c.lastTerm != nil && c.lastTerm.Reason == "StartError":
				reason, msg = "RunContainerError", c.lastTerm.Message
			case c.lastTerm != nil && time.Now().Before(c.nextStart):
				reason = "CrashLoopBackOff"
				msg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
					c.delay.String(), c.spec.Name, w.pod.Name, w.pod.Namespace, w.pod.UID)
			case !c.init && !initDone:
				reason = "PodInitializing"
			default:
				reason = "ContainerCreating"
			}
		}
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: msg}
		if c.lastTerm != nil {
			cs.LastTerminationState.Terminated = c.lastTerm
		}
	}
	return cs
}

func (w *podWorker) buildStatus() v1.PodStatus {
	pod := w.pod
	st := v1.PodStatus{
		HostIP:             w.k.nodeIP,
		HostIPs:            []v1.HostIP{{IP: w.k.nodeIP}},
		StartTime:          &w.startTime,
		QOSClass:           pod.Status.QOSClass,
		ObservedGeneration: pod.Generation,
		NominatedNodeName:  pod.Status.NominatedNodeName,
	}
	if w.sb != nil && !w.terminal {
		st.PodIP = w.sb.ip
		st.PodIPs = []v1.PodIP{{IP: w.sb.ip}}
	} else if w.sb != nil {
		st.PodIP, st.PodIPs = pod.Status.PodIP, pod.Status.PodIPs
	}
	initDone := true
	var incomplete []string
	for _, c := range w.inits {
		if !(c.succeeded || (c.sidecar && c.running && c.started)) {
			initDone = false
			incomplete = append(incomplete, c.spec.Name)
		}
	}
	for _, c := range w.inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, w.containerStatus(c, initDone))
	}
	var unready []string
	for _, c := range w.ctrs {
		cs := w.containerStatus(c, initDone)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.spec.Name)
		}
	}
	st.Phase = w.phase(st, initDone)
	conds := append([]v1.PodCondition(nil), pod.Status.Conditions...)
	cond := func(t v1.PodConditionType, ok bool, reason, msg string) {
		c := v1.PodCondition{Type: t, Status: v1.ConditionTrue, ObservedGeneration: pod.Generation}
		if !ok {
			c.Status, c.Reason, c.Message = v1.ConditionFalse, reason, msg
		}
		setCondition(&conds, c)
	}
	cond(v1.PodReadyToStartContainers, w.sb != nil && !w.terminal, "", "")
	cond(v1.PodInitialized, initDone, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: %v", incomplete))
	containersReady := len(unready) == 0 && st.Phase == v1.PodRunning
	reason := "ContainersNotReady"
	if st.Phase == v1.PodSucceeded {
		reason = "PodCompleted"
	}
	cond(v1.ContainersReady, containersReady, reason, fmt.Sprintf("containers with unready status: %v", unready))
	ready, readyMsg := containersReady, fmt.Sprintf("containers with unready status: %v", unready)
	readyReason := reason
	if ready {
		for _, g := range pod.Spec.ReadinessGates {
			ok := false
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType && c.Status == v1.ConditionTrue {
					ok = true
				}
			}
			if !ok {
				ready, readyReason = false, "ReadinessGatesNotReady"
				readyMsg = fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType)
			}
		}
	}
	cond(v1.PodReady, ready, readyReason, readyMsg)
	st.Conditions = conds
	return st
}

// phase is the kubelet's getPhase.
func (w *podWorker) phase(st v1.PodStatus, initDone bool) v1.PodPhase {
	policy := w.pod.Spec.RestartPolicy
	for _, c := range w.inits {
		if !c.sidecar && c.lastTerm != nil && c.lastTerm.ExitCode != 0 && policy == v1.RestartPolicyNever {
			return v1.PodFailed
		}
	}
	if !initDone && !w.terminal {
		return v1.PodPending
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	if w.terminal {
		if succeeded == len(st.ContainerStatuses) {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	switch {
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		if policy == v1.RestartPolicyAlways || policy == "" {
			return v1.PodRunning
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		if policy == v1.RestartPolicyOnFailure {
			return v1.PodRunning
		}
		return v1.PodFailed
	}
	return v1.PodPending
}

// writeStatus puts the pod's status through pods/status when it changed (optimistic
// concurrency: on a conflict, read the pod again and keep the conditions others own).
func (w *podWorker) writeStatus() {
	want := w.buildStatus()
	if w.lastStatus != nil && apiequality.Semantic.DeepEqual(*w.lastStatus, want) {
		return
	}
	pods := w.k.client.CoreV1().Pods(w.ns)
	pod := w.pod
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(w.k.ctx, 10*time.Second)
		p := pod.DeepCopy()
		p.Status = w.buildStatusFor(p)
		updated, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		cancel()
		if err == nil {
			w.pod = updated
			w.lastStatus = &want
			if pod.Status.Phase != updated.Status.Phase {
				logf("%s: %s", w.key, updated.Status.Phase)
			}
			return
		}
		if apierrors.IsNotFound(err) || w.k.ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			logf("%s: status: %v", w.key, err)
			w.setWake(time.Now().Add(time.Second))
			return
		}
		ctx, cancel = context.WithTimeout(w.k.ctx, 10*time.Second)
		fresh, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		cancel()
		if err != nil || fresh.UID != w.uid {
			return
		}
		pod = fresh
	}
	w.setWake(time.Now().Add(time.Second))
}

// buildStatusFor is buildStatus against another version of the pod (its conditions owned by
// others, its generation).
func (w *podWorker) buildStatusFor(p *v1.Pod) v1.PodStatus {
	saved := w.pod
	w.pod = p
	defer func() { w.pod = saved }()
	return w.buildStatus()
}

// olderVersion: an informer event may carry a version older than the one our own status write
// returned (resource versions are integers on this API server; if not, take the event).
func olderVersion(p, cur *v1.Pod) bool {
	a, err1 := strconv.ParseUint(p.ResourceVersion, 10, 64)
	b, err2 := strconv.ParseUint(cur.ResourceVersion, 10, 64)
	return err1 == nil && err2 == nil && a < b
}
