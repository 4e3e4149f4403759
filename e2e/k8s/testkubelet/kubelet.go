package main

// The kubelet core: informers over the whole cluster (filtered to the watched namespaces), one
// work queue for pods, claims and volumes, the scheduler's binding step, the volume provisioner,
// and the Node with its heartbeat.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

const provisionerName = "dispotify.io/testkubelet"

type options struct {
	kubeconfig     string
	nodeName       string
	stateDir       string
	podCIDR        string
	clusterDomain  string
	schedulerName  string
	namespaces     map[string]bool // empty: all
	images         map[string]string
	imageUser      int64
	ttl            time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration
	shutdownGrace  time.Duration
	dnsLogQueries  bool
}

type kubelet struct {
	opts     options
	ctx      context.Context
	client   kubernetes.Interface
	factory  informers.SharedInformerFactory
	pods     corelisters.PodLister
	cms      corelisters.ConfigMapLister
	secrets  corelisters.SecretLister
	svcs     corelisters.ServiceLister
	pvcs     corelisters.PersistentVolumeClaimLister
	pvs      corelisters.PersistentVolumeLister
	slices   discoverylisters.EndpointSliceLister
	queue    workqueue.TypedRateLimitingInterface[string]
	net      *network
	dns      *dnsServer
	recorder record.EventRecorder // source kubelet
	schedRec record.EventRecorder // source default-scheduler
	nodeIP   string
	api      *apiProxy // the `kubernetes` Service in pods (apiproxy.go)
	capacity v1.ResourceList
	bcast    record.EventBroadcaster

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	wg      sync.WaitGroup
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s testkubelet: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func (k *kubelet) watched(ns string) bool {
	return len(k.opts.namespaces) == 0 || k.opts.namespaces[ns]
}

// objectSource for env and volumes.
func (k *kubelet) configMap(ns, name string) (*v1.ConfigMap, error) {
	return k.cms.ConfigMaps(ns).Get(name)
}
func (k *kubelet) secret(ns, name string) (*v1.Secret, error) { return k.secrets.Secrets(ns).Get(name) }
func (k *kubelet) services(ns string) []*v1.Service {
	s, _ := k.svcs.Services(ns).List(labels.Everything())
	return s
}

func newKubelet(ctx context.Context, opts options, client kubernetes.Interface, nw *network, dns *dnsServer) *kubelet {
	k := &kubelet{opts: opts, ctx: ctx, client: client, net: nw, dns: dns, nodeIP: nw.gateway.String(),
		workers: map[types.UID]*podWorker{}}
	k.factory = informers.NewSharedInformerFactory(client, 0)
	k.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 5*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "testkubelet"})

	podInf := k.factory.Core().V1().Pods()
	k.pods = podInf.Lister()
	podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.enqueueObj("pod", o) },
		UpdateFunc: func(_, o any) { k.enqueueObj("pod", o) },
		DeleteFunc: func(o any) { k.enqueueObj("pod", o) },
	})
	refresh := func(o any) {
		if m, err := metaOf(o); err == nil {
			k.refreshNamespace(m.GetNamespace())
		}
	}
	cmInf := k.factory.Core().V1().ConfigMaps()
	k.cms = cmInf.Lister()
	cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: refresh, UpdateFunc: func(_, o any) { refresh(o) }})
	secInf := k.factory.Core().V1().Secrets()
	k.secrets = secInf.Lister()
	secInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: refresh, UpdateFunc: func(_, o any) { refresh(o) }})
	dnsChanged := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.queue.Add("dns") },
		UpdateFunc: func(any, any) { k.queue.Add("dns") },
		DeleteFunc: func(any) { k.queue.Add("dns") },
	}
	svcInf := k.factory.Core().V1().Services()
	k.svcs = svcInf.Lister()
	svcInf.Informer().AddEventHandler(dnsChanged)
	sliceInf := k.factory.Discovery().V1().EndpointSlices()
	k.slices = sliceInf.Lister()
	sliceInf.Informer().AddEventHandler(dnsChanged)
	pvcInf := k.factory.Core().V1().PersistentVolumeClaims()
	k.pvcs = pvcInf.Lister()
	pvcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.enqueueObj("pvc", o) },
		UpdateFunc: func(_, o any) { k.enqueueObj("pvc", o) },
	})
	pvInf := k.factory.Core().V1().PersistentVolumes()
	k.pvs = pvInf.Lister()
	pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.enqueueObj("pv", o) },
		UpdateFunc: func(_, o any) { k.enqueueObj("pv", o) },
	})

	k.bcast = record.NewBroadcaster(record.WithContext(ctx))
	k.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	k.recorder = k.bcast.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: opts.nodeName})
	k.schedRec = k.bcast.NewRecorder(scheme.Scheme, v1.EventSource{Component: "default-scheduler"})
	return k
}

func metaOf(o any) (metav1.Object, error) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("not an object")
	}
	return m, nil
}

func (k *kubelet) enqueueObj(kind string, o any) {
	m, err := metaOf(o)
	if err != nil {
		return
	}
	if m.GetNamespace() != "" && !k.watched(m.GetNamespace()) {
		return
	}
	key := m.GetName()
	if m.GetNamespace() != "" {
		key = m.GetNamespace() + "/" + key
	}
	k.queue.Add(kind + ":" + key)
}

// refreshNamespace tells the pod workers of ns that a ConfigMap or Secret changed.
func (k *kubelet) refreshNamespace(ns string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.workers {
		if w.ns == ns {
			select {
			case w.refresh <- struct{}{}:
			default:
			}
		}
	}
}

func (k *kubelet) run() {
	k.factory.Start(k.ctx.Done())
	for t, ok := range k.factory.WaitForCacheSync(k.ctx.Done()) {
		if !ok {
			logf("cache of %v did not sync", t)
		}
	}
	logf("caches synced; node %s ready for pods", k.opts.nodeName)
	k.queue.Add("dns")
	for i := 0; i < 2; i++ {
		go k.worker()
	}
	// Pods waiting on something that sends no event (a deleted PVC's replacement, ...).
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-k.ctx.Done():
				return
			case <-t.C:
				pods, _ := k.pods.List(labels.Everything())
				for _, p := range pods {
					if p.Spec.NodeName == "" && k.watched(p.Namespace) {
						k.queue.Add("pod:" + p.Namespace + "/" + p.Name)
					}
				}
			}
		}
	}()
	<-k.ctx.Done()
	k.queue.ShutDown()
}

func (k *kubelet) worker() {
	for {
		key, quit := k.queue.Get()
		if quit {
			return
		}
		err := k.sync(key)
		if err != nil && k.ctx.Err() == nil {
			logf("%s: %v (retrying)", key, err)
			k.queue.AddRateLimited(key)
		} else {
			k.queue.Forget(key)
		}
		k.queue.Done(key)
	}
}

func (k *kubelet) sync(key string) error {
	kind, name, _ := strings.Cut(key, ":")
	switch kind {
	case "pod":
		return k.syncPod(name)
	case "pvc":
		return k.syncClaim(name)
	case "pv":
		return k.syncVolume(name)
	case "dns":
		svcs, _ := k.svcs.List(labels.Everything())
		var watchedSvcs []*v1.Service
		for _, s := range svcs {
			if k.watched(s.Namespace) || (s.Namespace == "default" && s.Name == "kubernetes") {
				watchedSvcs = append(watchedSvcs, s)
			}
		}
		slices, _ := k.slices.List(labels.Everything())
		k.dns.update(watchedSvcs, slices)
	}
	return nil
}

func (k *kubelet) syncPod(key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		pod = nil
	} else if err != nil {
		return err
	}
	// Workers of this name whose pod is gone (deleted, or replaced by a pod with a new UID).
	k.mu.Lock()
	for uid, w := range k.workers {
		if w.key == key && (pod == nil || pod.UID != uid) {
			w.markGone()
		}
	}
	k.mu.Unlock()
	if pod == nil {
		return nil
	}
	switch pod.Spec.NodeName {
	case "":
		return k.schedule(pod)
	case k.opts.nodeName:
		k.mu.Lock()
		w := k.workers[pod.UID]
		if w == nil {
			if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
				k.mu.Unlock()
				if pod.DeletionTimestamp != nil {
					return k.finishDeletion(pod)
				}
				return nil
			}
			w = newPodWorker(k, pod)
			k.workers[pod.UID] = w
			k.wg.Add(1)
			go func() {
				defer k.wg.Done()
				w.run()
				k.mu.Lock()
				delete(k.workers, w.uid)
				k.mu.Unlock()
			}()
		}
		k.mu.Unlock()
		w.update(pod)
	}
	return nil
}

func (k *kubelet) finishDeletion(pod *v1.Pod) error {
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	logf("%s/%s: deleted", pod.Namespace, pod.Name)
	return nil
}

// schedule is the default scheduler's filter and bind for one node: node selector and required
// node affinity on the node's labels, and every PVC of the pod bound (no PVC yet: unschedulable,
// as "persistentvolumeclaim not found").
func (k *kubelet) schedule(pod *v1.Pod) error {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		return nil
	}
	sched := pod.Spec.SchedulerName
	if sched == "" {
		sched = v1.DefaultSchedulerName
	}
	if sched != k.opts.schedulerName || !k.watched(pod.Namespace) {
		return nil
	}
	if reason := k.unschedulable(pod); reason != "" {
		return k.markUnschedulable(pod, reason)
	}
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	err := k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: k.opts.nodeName},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // already bound, or gone
	}
	if err != nil {
		return err
	}
	logf("%s/%s: bound to %s", pod.Namespace, pod.Name, k.opts.nodeName)
	k.schedRec.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, k.opts.nodeName)
	return nil
}

func (k *kubelet) nodeLabels() map[string]string {
	return map[string]string{
		"kubernetes.io/hostname":  k.opts.nodeName,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      runtime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": runtime.GOARCH,
	}
}

func (k *kubelet) unschedulable(pod *v1.Pod) string {
	nl := labels.Set(k.nodeLabels())
	for key, v := range pod.Spec.NodeSelector {
		if nl[key] != v {
			return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
		}
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		match := false
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			if termMatches(term, nl) {
				match = true
			}
		}
		if !match {
			return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
		}
	}
	for _, vol := range pod.Spec.Volumes {
		claim := ""
		switch {
		case vol.PersistentVolumeClaim != nil:
			claim = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			claim = pod.Name + "-" + vol.Name
		default:
			continue
		}
		pvc, err := k.pvcs.PersistentVolumeClaims(pod.Namespace).Get(claim)
		if err != nil {
			return fmt.Sprintf("0/1 nodes are available: persistentvolumeclaim %q not found.", claim)
		}
		if pvc.DeletionTimestamp != nil {
			return fmt.Sprintf("0/1 nodes are available: persistentvolumeclaim %q is being deleted.", claim)
		}
		if pvc.Status.Phase != v1.ClaimBound {
			return "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
		}
	}
	return ""
}

func termMatches(term v1.NodeSelectorTerm, nl labels.Set) bool {
	for _, r := range term.MatchExpressions {
		v, has := nl[r.Key]
		in := false
		for _, x := range r.Values {
			if x == v {
				in = true
			}
		}
		switch r.Operator {
		case v1.NodeSelectorOpIn:
			if !has || !in {
				return false
			}
		case v1.NodeSelectorOpNotIn:
			if has && in {
				return false
			}
		case v1.NodeSelectorOpExists:
			if !has {
				return false
			}
		case v1.NodeSelectorOpDoesNotExist:
			if has {
				return false
			}
		default:
			return false // Gt/Lt: not needed here
		}
	}
	for _, f := range term.MatchFields {
		if f.Key == "metadata.name" {
			in := false
			for _, x := range f.Values {
				if x == nl["kubernetes.io/hostname"] {
					in = true
				}
			}
			if (f.Operator == v1.NodeSelectorOpIn) != in {
				return false
			}
		}
	}
	return true
}

func (k *kubelet) markUnschedulable(pod *v1.Pod, msg string) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse && c.Message == msg {
			return nil
		}
	}
	p := pod.DeepCopy()
	setCondition(&p.Status.Conditions, v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionFalse,
		Reason: v1.PodReasonUnschedulable, Message: msg})
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	if _, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return err
	}
	logf("%s/%s: unschedulable: %s", pod.Namespace, pod.Name, msg)
	k.schedRec.Event(pod, v1.EventTypeWarning, "FailedScheduling", msg)
	return nil
}

// setCondition replaces the condition of the same type, keeping its lastTransitionTime when the
// status did not change.
func setCondition(conds *[]v1.PodCondition, c v1.PodCondition) {
	for i := range *conds {
		if (*conds)[i].Type == c.Type {
			if (*conds)[i].Status == c.Status {
				c.LastTransitionTime = (*conds)[i].LastTransitionTime
			} else {
				c.LastTransitionTime = metav1.Now()
			}
			(*conds)[i] = c
			return
		}
	}
	c.LastTransitionTime = metav1.Now()
	*conds = append(*conds, c)
}

// syncClaim provisions a PV for a pending claim: a directory <state-dir>/volumes/<pvc-uid> as a
// hostPath PV pre-bound to the claim (claimRef), which kube-controller-manager's PV controller then
// binds, as for any provisioned volume. A claim that asks for more than its volume has (expansion)
// gets it at once: the PV's capacity and the claim's status.capacity.
func (k *kubelet) syncClaim(key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pvc, err := k.pvcs.PersistentVolumeClaims(ns).Get(name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	defer k.enqueuePendingPods(ns)
	if pvc.DeletionTimestamp != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	want := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if pvc.Spec.VolumeName != "" {
		return k.expandClaim(ctx, pvc, want)
	}
	if pvc.Status.Phase != v1.ClaimPending && pvc.Status.Phase != "" {
		return nil
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == v1.PersistentVolumeBlock {
		logf("pvc %s: block volumes are not supported", key)
		return nil
	}
	if pvc.Spec.Selector != nil || pvc.Spec.DataSource != nil {
		logf("pvc %s: selector/dataSource ignored", key)
	}
	pvName := "pvc-" + string(pvc.UID)
	if _, err := k.pvs.Get(pvName); err == nil {
		return nil
	}
	dir := filepath.Join(k.opts.stateDir, "volumes", string(pvc.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	reclaim := v1.PersistentVolumeReclaimDelete
	class := ptr.Deref(pvc.Spec.StorageClassName, "")
	if class != "" {
		if sc, err := k.client.StorageV1().StorageClasses().Get(ctx, class, metav1.GetOptions{}); err == nil && sc.ReclaimPolicy != nil {
			reclaim = *sc.ReclaimPolicy
		}
	}
	if want.IsZero() {
		want = resource.MustParse("1Gi")
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisionerName},
			Labels:      map[string]string{"dispotify.io/testkubelet-node": k.opts.nodeName}},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: want},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class,
			ClaimRef: &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
			PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{
				Path: dir, Type: ptr.To(v1.HostPathDirectoryOrCreate)}},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: v1.NodeSelectorOpIn,
					Values: []string{k.opts.nodeName}}}}}}},
		},
	}
	if len(pv.Spec.AccessModes) == 0 {
		pv.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	if _, err := k.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	logf("pvc %s: provisioned %s at %s", key, pvName, dir)
	return nil
}

func (k *kubelet) expandClaim(ctx context.Context, pvc *v1.PersistentVolumeClaim, want resource.Quantity) error {
	pv, err := k.pvs.Get(pvc.Spec.VolumeName)
	if err != nil || pv.Annotations["pv.kubernetes.io/provisioned-by"] != provisionerName || pvc.Status.Phase != v1.ClaimBound {
		return nil
	}
	have := pv.Spec.Capacity[v1.ResourceStorage]
	if want.Cmp(have) > 0 {
		p := pv.DeepCopy()
		p.Spec.Capacity[v1.ResourceStorage] = want
		if _, err := k.client.CoreV1().PersistentVolumes().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			return err
		}
		logf("pv %s: expanded to %s", pv.Name, want.String())
	}
	cur := pvc.Status.Capacity[v1.ResourceStorage]
	if want.Cmp(cur) > 0 {
		c := pvc.DeepCopy()
		if c.Status.Capacity == nil {
			c.Status.Capacity = v1.ResourceList{}
		}
		c.Status.Capacity[v1.ResourceStorage] = want
		c.Status.AllocatedResources = v1.ResourceList{v1.ResourceStorage: want}
		c.Status.AllocatedResourceStatuses = nil
		c.Status.Conditions = nil
		if _, err := k.client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
			return err
		}
		logf("pvc %s/%s: capacity %s", pvc.Namespace, pvc.Name, want.String())
	}
	return nil
}

func (k *kubelet) enqueuePendingPods(ns string) {
	pods, _ := k.pods.Pods(ns).List(labels.Everything())
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Spec.NodeName == k.opts.nodeName {
			k.queue.Add("pod:" + p.Namespace + "/" + p.Name)
		}
	}
}

// syncVolume deletes a released volume of ours whose policy is Delete (what an external
// provisioner does): its directory, then the PV.
func (k *kubelet) syncVolume(name string) error {
	pv, err := k.pvs.Get(name)
	if err != nil {
		return nil
	}
	if pv.Annotations["pv.kubernetes.io/provisioned-by"] != provisionerName ||
		pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete ||
		(pv.Status.Phase != v1.VolumeReleased && pv.Status.Phase != v1.VolumeFailed) || pv.DeletionTimestamp != nil {
		return nil
	}
	if pv.Spec.HostPath != nil && strings.HasPrefix(pv.Spec.HostPath.Path, filepath.Join(k.opts.stateDir, "volumes")+"/") {
		if err := os.RemoveAll(pv.Spec.HostPath.Path); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	if err := k.client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	logf("pv %s: released, deleted with its data", name)
	return nil
}

// Node registration and heartbeat -------------------------------------------------------------

func memoryBytes() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "MemTotal: %d kB", &kb); n == 1 {
			return kb * 1024
		}
	}
	return 0
}

func (k *kubelet) nodeConditions(now metav1.Time) []v1.NodeCondition {
	mk := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		return v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []v1.NodeCondition{
		mk(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		mk(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		mk(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		mk(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (dispotify test kubelet)"),
	}
}

func (k *kubelet) registerNode() error {
	var st syscall.Statfs_t
	disk := int64(0)
	if syscall.Statfs(k.opts.stateDir, &st) == nil {
		disk = int64(st.Blocks) * st.Bsize
	}
	k.capacity = v1.ResourceList{
		v1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		v1.ResourceMemory:           *resource.NewQuantity(memoryBytes(), resource.BinarySI),
		v1.ResourcePods:             resource.MustParse("110"),
		v1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	kernel := ""
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		kernel += string(rune(c))
	}
	now := metav1.Now()
	status := v1.NodeStatus{
		Capacity:    k.capacity,
		Allocatable: k.capacity,
		Conditions:  k.nodeConditions(now),
		Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: k.nodeIP},
			{Type: v1.NodeHostName, Address: k.opts.nodeName}},
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: 10250}},
		NodeInfo: v1.NodeSystemInfo{KubeletVersion: "v1.37.2", KubeProxyVersion: "", OperatingSystem: "linux",
			Architecture: runtime.GOARCH, ContainerRuntimeVersion: "testkubelet://1", KernelVersion: kernel,
			OSImage: "dispotify test kubelet (processes on the host)"},
	}
	ctx, cancel := context.WithTimeout(k.ctx, 15*time.Second)
	defer cancel()
	nodes := k.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, k.opts.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.opts.nodeName, Labels: k.nodeLabels()},
			Spec: v1.NodeSpec{PodCIDR: k.net.cidr.String(), PodCIDRs: []string{k.net.cidr.String()}}}
		if _, err = nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node: %v", err)
		}
		logf("node %s registered", k.opts.nodeName)
	} else if err != nil {
		return fmt.Errorf("get node: %v", err)
	} else {
		for key, v := range k.nodeLabels() {
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			node.Labels[key] = v
		}
		if _, err = nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("update node: %v", err)
		}
		logf("node %s exists; taking it over", k.opts.nodeName)
	}
	// The node lifecycle controller writes the new node too (taints, annotations): retry.
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := nodes.Get(ctx, k.opts.nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node.Status = status
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node status: %v", err)
	}
	return nil
}

// heartbeat renews the node's Lease every 10 s and posts the node status every minute, as the
// kubelet does (kube-controller-manager marks a node whose lease is older than 40 s NotReady and
// later evicts its pods).
func (k *kubelet) heartbeat() {
	leases := k.client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	lastStatus := time.Now()
	renew := func() {
		ctx, cancel := context.WithTimeout(k.ctx, 5*time.Second)
		defer cancel()
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, k.opts.nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: k.opts.nodeName, Namespace: v1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(k.opts.nodeName), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now}}
			_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		} else if err == nil {
			l.Spec.RenewTime = &now
			l.Spec.HolderIdentity = ptr.To(k.opts.nodeName)
			l.Spec.LeaseDurationSeconds = ptr.To[int32](40)
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if err != nil && k.ctx.Err() == nil {
			logf("node lease: %v", err)
		}
		if time.Since(lastStatus) >= time.Minute {
			lastStatus = time.Now()
			node, err := k.client.CoreV1().Nodes().Get(ctx, k.opts.nodeName, metav1.GetOptions{})
			if err == nil {
				now := metav1.Now()
				conds := k.nodeConditions(now)
				for i := range conds {
					for _, old := range node.Status.Conditions {
						if old.Type == conds[i].Type && old.Status == conds[i].Status {
							conds[i].LastTransitionTime = old.LastTransitionTime
						}
					}
				}
				node.Status.Conditions = conds
				_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
			}
			if err != nil && k.ctx.Err() == nil {
				logf("node status: %v", err)
			}
		}
	}
	renew()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
			renew()
		}
	}
}

// waitWorkers waits for every pod worker to stop its pod (kubelet shutdown).
func (k *kubelet) waitWorkers() {
	k.wg.Wait()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
