// Command dispotify-testkubelet plays the kubelet and the scheduler of ONE fake node for the
// operator's end-to-end test, against a real kube-apiserver and kube-controller-manager
// (e2e/k8s/control-plane.sh). It runs each pod's containers as real processes on this machine.
//
// # Running it
//
//	e2e/k8s/build-testkubelet.sh                  # builds (cached) ~/.cache/dispotify/bin/dispotify-testkubelet
//	dispotify-testkubelet --kubeconfig DIR/kubeconfig --state-dir STATE \
//	    --image dispotify/node=/abs/path/to/dispotify-node [--image debian=] \
//	    [--namespace NS]... [--node-name testnode] [--ttl 1h]
//
// e2e/k8s/testkubelet/smoke.sh checks it end to end (control plane, StatefulSet, DNS, restarts,
// deletion) in about 20 s. Root is needed (network namespaces, bind mounts). It stops by itself after --ttl, and on
// SIGTERM/SIGINT; either way it stops every pod process (SIGTERM, then SIGKILL), removes the
// network namespaces, veths and bridge it made, and stops dnsmasq. If it is SIGKILLed, its pod
// processes and dnsmasq die with it (parent-death signal) and the next run removes the leftover
// network namespaces and bridge.
//
// # What it does, as a kubelet and scheduler would
//
//   - Node: registers Node <node-name> (Ready, capacity from this machine, InternalIP = the pod
//     bridge's address), renews its Lease in kube-node-lease every 10 s, posts status every minute.
//   - Scheduling: binds pods of the watched namespaces that have no nodeName (schedulerName
//     default-scheduler) through pods/binding, once their nodeSelector / required node affinity
//     match and their PVCs are Bound; otherwise PodScheduled=False/Unschedulable as the scheduler
//     says it.
//   - Volumes provisioner: a pending PVC gets a hostPath PV (pvc-<uid>) pre-bound to it, at
//     <state-dir>/volumes/<pvc-uid>/; kube-controller-manager's PV controller binds them. A
//     released PV of policy Delete is deleted with its directory. A PVC asking for more storage gets
//     it (PV capacity and PVC status.capacity).
//   - Containers: image → local binary by repository (any tag): `--image REPO=PATH`; PATH is the
//     image's entrypoint; `--image REPO=` is an image with no entrypoint (command required, looked
//     up on the host). Pod command/args, env (value, fieldRef, resourceFieldRef, configMapKeyRef,
//     secretKeyRef, envFrom, service links) and $(VAR) expansion in env, command and args as the
//     kubelet does them. securityContext: runAsUser/runAsGroup/fsGroup/supplementalGroups,
//     runAsNonRoot (refused for root, as the kubelet does; the images' user is --image-user),
//     readOnlyRootFilesystem (the host's mounts are read-only in the pod), allowPrivilegeEscalation.
//   - Network: each pod has a network namespace with a veth on the bridge tkbN (10.244.N.0/24,
//     gateway .1 on the host, so the host reaches pod IPs and pods reach the host at the gateway);
//     its UTS hostname, and the kubelet's /etc/hosts, /etc/hostname and /etc/resolv.conf
//     (dnsPolicy, dnsConfig, hostAliases) bind-mounted in its own mount namespace. hostNetwork
//     pods use the host's network (IP = node IP).
//   - DNS: dnsmasq on the gateway answers <svc>.<ns>.svc.cluster.local and, for headless Services,
//     <hostname>.<svc>.<ns>.svc.cluster.local from the Services and EndpointSlices (so not-ready
//     pods resolve when the Service has publishNotReadyAddresses), updated on every change.
//     <state-dir>/resolv.conf points at it for the host side. ClusterIPs are NOT routed (no
//     kube-proxy): use headless names or pod IPs.
//   - Volumes in the pod: PVC (and generic ephemeral), emptyDir, configMap, secret, downwardAPI,
//     projected (with service account tokens), hostPath; subPath and subPathExpr. configMap,
//     secret and downwardAPI contents are rewritten atomically when the object changes.
//   - Probes: startup, liveness, readiness (httpGet, tcpSocket, exec; not grpc) with their delay,
//     period, timeout and thresholds, run from the host against the pod IP. A liveness or startup
//     failure restarts the container.
//   - Restarts: restartPolicy Always/OnFailure/Never; init containers (and sidecars); back-off as
//     the kubelet's (first restart at once, then --initial-backoff doubling up to --max-backoff,
//     10 s by default, reset after a run of twice the cap).
//   - Status through pods/status: phase, podIP(s), hostIP(s), startTime, conditions
//     (PodReadyToStartContainers, Initialized, ContainersReady, Ready with readiness gates;
//     PodScheduled is the API server's), container statuses (state running / waiting with
//     CrashLoopBackOff... / terminated with exit code and signal, lastState, ready, started,
//     restartCount). Events as the kubelet and scheduler send them (Scheduled, Started, Killing,
//     Unhealthy, BackOff, FailedMount).
//   - Deletion: a pod with a deletionTimestamp gets its preStop hooks and SIGTERM, SIGKILL after the
//     grace period, a terminal status, then is deleted with grace 0 and its UID as precondition.
//
// # Hooks for tests (files only)
//
//	<state-dir>/pods/<ns>_<pod>/pid        pid of the first container's process (kill -9 it)
//	<state-dir>/pods/<ns>_<pod>/log        its stdout+stderr, every run appended after a ==== line
//	<state-dir>/pods/<ns>_<pod>/{pid,log}.<container>   the other (and init) containers
//	<state-dir>/volumes/<pvc-uid>/         a PVC's data (wipe it to simulate a lost disk)
//	<state-dir>/resolv.conf                the cluster DNS for the host side
//	<state-dir>/dns/hosts, dns/dnsmasq.log the DNS records and the DNS server's log
//
// # Not done
//
// No images or rootfs (containers see the host's filesystem), no resource limits (cgroups), no
// kube-proxy (ClusterIPs do not route), no `kubectl logs/exec/port-forward` (no kubelet API), no
// grpc probes, no NetworkPolicy enforcement, one node only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// emergencyCleanup removes the network when a second signal makes us exit at once (the pods and
// dnsmasq die with us by their parent-death signal).
var emergencyCleanup atomic.Pointer[func()]

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if len(os.Args) > 2 && os.Args[1] == "__container" {
		containerMain(os.Args[2])
		return
	}
	var opts options
	var images, namespaces multiFlag
	flag.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig of the API server (required)")
	flag.StringVar(&opts.stateDir, "state-dir", "", "directory for pods, volumes and DNS files (required)")
	flag.StringVar(&opts.nodeName, "node-name", "testnode", "name of the Node to register")
	flag.Var(&images, "image", "REPO=PATH: run image REPO (any tag) as the binary PATH; REPO= for an image with no entrypoint (repeatable)")
	flag.Var(&namespaces, "namespace", "schedule and run pods of this namespace only (repeatable; default all)")
	flag.StringVar(&opts.podCIDR, "pod-cidr", "", "pod CIDR (default: the first free 10.244.N.0/24)")
	flag.StringVar(&opts.clusterDomain, "cluster-domain", "cluster.local", "cluster DNS domain")
	flag.StringVar(&opts.schedulerName, "scheduler-name", "default-scheduler", "schedule pods that name this scheduler")
	flag.Int64Var(&opts.imageUser, "image-user", 0, "uid the images run as when the pod does not say (an image's USER)")
	flag.DurationVar(&opts.ttl, "ttl", time.Hour, "stop by itself after this long")
	flag.DurationVar(&opts.initialBackoff, "initial-backoff", time.Second, "restart back-off after the second failure")
	flag.DurationVar(&opts.maxBackoff, "max-backoff", 10*time.Second, "restart back-off cap")
	flag.DurationVar(&opts.shutdownGrace, "shutdown-grace", 10*time.Second, "longest grace period given to pods when the kubelet stops")
	flag.BoolVar(&opts.dnsLogQueries, "dns-log-queries", false, "make dnsmasq log every query to <state-dir>/dns/dnsmasq.log")
	flag.Parse()
	if opts.kubeconfig == "" || opts.stateDir == "" {
		fmt.Fprintln(os.Stderr, "usage: dispotify-testkubelet --kubeconfig FILE --state-dir DIR [--image REPO=PATH]... (see -h)")
		os.Exit(2)
	}
	opts.images = map[string]string{}
	for _, im := range images {
		repo, path, ok := strings.Cut(im, "=")
		if !ok || repo == "" {
			fmt.Fprintf(os.Stderr, "--image %q: want REPO=PATH\n", im)
			os.Exit(2)
		}
		if path != "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				fmt.Fprintf(os.Stderr, "--image %q: %v\n", im, err)
				os.Exit(2)
			}
			if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				fmt.Fprintf(os.Stderr, "--image %q: %s is not an executable file\n", im, abs)
				os.Exit(2)
			}
			path = abs
		}
		opts.images[repo] = path
	}
	opts.namespaces = map[string]bool{}
	for _, ns := range namespaces {
		opts.namespaces[ns] = true
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "dispotify-testkubelet: needs root (network namespaces, mounts)")
		os.Exit(1)
	}
	if err := os.MkdirAll(opts.stateDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts.stateDir, _ = filepath.Abs(opts.stateDir)
	klog.LogToStderr(true)
	if err := runKubelet(opts); err != nil {
		logf("error: %v", err)
		os.Exit(1)
	}
}

func runKubelet(opts options) error {
	startSpawner()
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "dispotify-testkubelet"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case s := <-sigs:
			logf("%v: stopping", s)
		case <-time.After(opts.ttl):
			logf("ttl %s reached: stopping", opts.ttl)
		}
		cancel()
		// A second signal stops at once (the pods die with us: parent-death signal).
		s := <-sigs
		logf("%v again: exiting now", s)
		if f := emergencyCleanup.Load(); f != nil {
			(*f)()
		}
		os.Exit(1)
	}()

	nw, err := setupNetwork(opts.podCIDR)
	if err != nil {
		return fmt.Errorf("network: %v", err)
	}
	defer nw.teardown()
	teardown := func() { nw.teardown() }
	emergencyCleanup.Store(&teardown)
	dns, err := startDNS(opts.stateDir, nw.gateway.String(), opts.clusterDomain, opts.dnsLogQueries)
	if err != nil {
		return err
	}
	defer dns.stop()

	k := newKubelet(ctx, opts, client, nw, dns)
	if k.api, err = newAPIProxy(cfg.Host); err != nil {
		return err
	}
	if err := k.registerNode(); err != nil {
		return err
	}
	go k.heartbeat()
	logf("node %s: pods in %s, state in %s, ttl %s", opts.nodeName, nsText(opts.namespaces), opts.stateDir, opts.ttl)
	k.run()
	k.mu.Lock()
	n := len(k.workers)
	k.mu.Unlock()
	logf("stopping %d pod(s)", n)
	k.waitWorkers()
	k.bcast.Shutdown()
	logf("stopped")
	return nil
}

func nsText(ns map[string]bool) string {
	if len(ns) == 0 {
		return "all namespaces"
	}
	return "namespaces " + strings.Join(sortedKeys(ns), ",")
}
