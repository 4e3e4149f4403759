package main

// Pod volumes, as host directories bind-mounted in the pod's mount namespace:
//   persistentVolumeClaim  the bound PV's hostPath (a PV this kubelet provisioned:
//                          <state-dir>/volumes/<pvc-uid>); also generic ephemeral volumes
//   emptyDir               <state-dir>/pod-volumes/<pod-uid>/<volume>, mode 0777, removed with the pod
//   configMap, secret,     files written like the kubelet's AtomicWriter (..data symlink to a
//   downwardAPI, projected timestamped directory, swapped atomically), rewritten when the object or
//                          the pod's labels/annotations change; mounted read-only
//   hostPath               the host path itself
// fsGroup: volumes the pod writes to get the group and the setgid bit, as the kubelet's
// SetVolumeOwnership does (at the volume root only when fsGroupChangePolicy is OnRootMismatch and the
// root already matches).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type fileEntry struct {
	data []byte
	mode os.FileMode
}

// volume is a prepared pod volume.
type volume struct {
	path      string
	readOnly  bool // always mounted read-only (configMap, secret, downwardAPI, projected)
	projected bool // rewritten on change
}

func itemMode(itemMode *int32, defaultMode *int32, fallback int32) os.FileMode {
	if itemMode != nil {
		return os.FileMode(*itemMode)
	}
	if defaultMode != nil {
		return os.FileMode(*defaultMode)
	}
	return os.FileMode(fallback)
}

func keyPayload(data map[string][]byte, items []v1.KeyToPath, defaultMode *int32, optional bool, what string) (map[string]fileEntry, error) {
	out := map[string]fileEntry{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = fileEntry{v, itemMode(nil, defaultMode, 0o644)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, it.Key)
		}
		out[it.Path] = fileEntry{v, itemMode(it.Mode, defaultMode, 0o644)}
	}
	return out, nil
}

func (k *kubelet) configMapPayload(ns string, src *v1.ConfigMapVolumeSource, defaultMode *int32) (map[string]fileEntry, error) {
	optional := src.Optional != nil && *src.Optional
	cm, err := k.configMap(ns, src.Name)
	if err != nil {
		if optional {
			return map[string]fileEntry{}, nil
		}
		return nil, fmt.Errorf("configmap %q not found", src.Name)
	}
	data := map[string][]byte{}
	for key, v := range cm.Data {
		data[key] = []byte(v)
	}
	for key, v := range cm.BinaryData {
		data[key] = v
	}
	return keyPayload(data, src.Items, defaultMode, optional, "configmap "+src.Name)
}

func (k *kubelet) secretPayload(ns, name string, items []v1.KeyToPath, optionalp *bool, defaultMode *int32) (map[string]fileEntry, error) {
	optional := optionalp != nil && *optionalp
	s, err := k.secret(ns, name)
	if err != nil {
		if optional {
			return map[string]fileEntry{}, nil
		}
		return nil, fmt.Errorf("secret %q not found", name)
	}
	return keyPayload(s.Data, items, defaultMode, optional, "secret "+name)
}

func (k *kubelet) downwardPayload(pod *v1.Pod, facts podFacts, items []v1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]fileEntry, error) {
	out := map[string]fileEntry{}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = fieldValue(pod, facts, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = resourceValue(pod, facts, "", it.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		out[it.Path] = fileEntry{[]byte(v), itemMode(it.Mode, defaultMode, 0o644)}
	}
	return out, nil
}

func (k *kubelet) tokenPayload(pod *v1.Pod, src *v1.ServiceAccountTokenProjection, defaultMode *int32) (map[string]fileEntry, error) {
	exp := int64(3600)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	var aud []string
	if src.Audience != "" {
		aud = []string{src.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	tr, err := k.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{Audiences: aud, ExpirationSeconds: &exp,
			BoundObjectRef: &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for service account %s: %v", sa, err)
	}
	return map[string]fileEntry{src.Path: {[]byte(tr.Status.Token), itemMode(nil, defaultMode, 0o644)}}, nil
}

// payload is the files of a configMap, secret, downwardAPI or projected volume; nil for other kinds.
// Service account tokens are requested once per pod (cached in tokens).
func (k *kubelet) payload(pod *v1.Pod, facts podFacts, vol *v1.Volume, tokens map[string]map[string]fileEntry) (map[string]fileEntry, error) {
	switch {
	case vol.ConfigMap != nil:
		return k.configMapPayload(pod.Namespace, vol.ConfigMap, vol.ConfigMap.DefaultMode)
	case vol.Secret != nil:
		return k.secretPayload(pod.Namespace, vol.Secret.SecretName, vol.Secret.Items, vol.Secret.Optional, vol.Secret.DefaultMode)
	case vol.DownwardAPI != nil:
		return k.downwardPayload(pod, facts, vol.DownwardAPI.Items, vol.DownwardAPI.DefaultMode)
	case vol.Projected != nil:
		out := map[string]fileEntry{}
		for i, s := range vol.Projected.Sources {
			var part map[string]fileEntry
			var err error
			switch {
			case s.ConfigMap != nil:
				part, err = k.configMapPayload(pod.Namespace, &v1.ConfigMapVolumeSource{LocalObjectReference: s.ConfigMap.LocalObjectReference,
					Items: s.ConfigMap.Items, Optional: s.ConfigMap.Optional}, vol.Projected.DefaultMode)
			case s.Secret != nil:
				part, err = k.secretPayload(pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, vol.Projected.DefaultMode)
			case s.DownwardAPI != nil:
				part, err = k.downwardPayload(pod, facts, s.DownwardAPI.Items, vol.Projected.DefaultMode)
			case s.ServiceAccountToken != nil:
				key := vol.Name + "/" + strconv.Itoa(i)
				if tokens[key] == nil {
					part, err = k.tokenPayload(pod, s.ServiceAccountToken, vol.Projected.DefaultMode)
					if err == nil {
						tokens[key] = part
					}
				}
				part = tokens[key]
			default:
				err = fmt.Errorf("projected volume %s: unsupported source", vol.Name)
			}
			if err != nil {
				return nil, err
			}
			for p, e := range part {
				out[p] = e
			}
		}
		return out, nil
	}
	return nil, nil
}

// writeAtomic makes dir hold exactly files, the kubelet's way: the files live in a timestamped
// directory named by the ..data symlink, which is swapped by a rename; the visible names are
// symlinks through ..data. Returns whether anything changed.
func writeAtomic(dir string, files map[string]fileEntry, gid int) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	dataLink := filepath.Join(dir, "..data")
	if cur, err := os.Readlink(dataLink); err == nil && sameFiles(filepath.Join(dir, cur), files) {
		return false, nil
	}
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.")) // like the kubelet's
	if err != nil {
		return false, err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return false, err
	}
	for p, e := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(full, e.data, e.mode); err != nil {
			return false, err
		}
		if err := os.Chmod(full, e.mode); err != nil {
			return false, err
		}
		if gid >= 0 {
			_ = os.Lchown(full, -1, gid)
		}
	}
	old, _ := os.Readlink(dataLink)
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		return false, err
	}
	// The user-visible top-level names.
	want := map[string]bool{}
	for p := range files {
		want[strings.SplitN(p, "/", 2)[0]] = true
	}
	for top := range want {
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
			return false, err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") || want[n] {
			continue
		}
		_ = os.Remove(filepath.Join(dir, n))
	}
	if old != "" && old != filepath.Base(ts) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return true, nil
}

func sameFiles(dir string, files map[string]fileEntry) bool {
	count := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		count++
		rel, _ := filepath.Rel(dir, p)
		e, ok := files[rel]
		if !ok || info.Mode().Perm() != e.mode.Perm() {
			return fmt.Errorf("differs")
		}
		data, err := os.ReadFile(p)
		if err != nil || string(data) != string(e.data) {
			return fmt.Errorf("differs")
		}
		return nil
	})
	return err == nil && count == len(files)
}

// applyFSGroup gives the volume's files to the group fsGroup with group read/write and setgid
// directories (pkg/volume/volume_linux.go).
func applyFSGroup(root string, gid int64, onRootMismatch bool) {
	if onRootMismatch {
		if st, err := os.Stat(root); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int64(sys.Gid) == gid && st.Mode()&os.ModeSetgid != 0 {
				return
			}
		}
	}
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		_ = os.Lchown(p, -1, int(gid))
		mode := info.Mode()
		if info.IsDir() {
			_ = os.Chmod(p, (mode.Perm()|0o070)|os.ModeSetgid|(mode&os.ModeSticky))
		} else {
			_ = os.Chmod(p, mode.Perm()|0o060)
		}
		return nil
	})
}

// prepareVolumes makes every volume of the pod ready on the host; an error is the kubelet's
// FailedMount (the pod waits in ContainerCreating and it is retried).
func (w *podWorker) prepareVolumes(pod *v1.Pod) (map[string]*volume, error) {
	k := w.k
	out := map[string]*volume{}
	var fsGroup *int64
	onRootMismatch := false
	if sc := pod.Spec.SecurityContext; sc != nil {
		fsGroup = sc.FSGroup
		onRootMismatch = sc.FSGroupChangePolicy != nil && *sc.FSGroupChangePolicy == v1.FSGroupChangeOnRootMismatch
	}
	gid := -1
	if fsGroup != nil {
		gid = int(*fsGroup)
	}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		switch {
		case vol.PersistentVolumeClaim != nil || vol.Ephemeral != nil:
			claim := ""
			if vol.PersistentVolumeClaim != nil {
				claim = vol.PersistentVolumeClaim.ClaimName
			} else {
				claim = pod.Name + "-" + vol.Name
			}
			path, err := k.claimPath(pod.Namespace, claim)
			if err != nil {
				return nil, err
			}
			if fsGroup != nil {
				applyFSGroup(path, *fsGroup, onRootMismatch)
			}
			ro := vol.PersistentVolumeClaim != nil && vol.PersistentVolumeClaim.ReadOnly
			out[vol.Name] = &volume{path: path, readOnly: ro}
		case vol.EmptyDir != nil:
			dir := filepath.Join(w.volumeRoot(), "empty-dir", vol.Name)
			if _, err := os.Stat(dir); err != nil {
				if err := os.MkdirAll(dir, 0o777); err != nil {
					return nil, err
				}
				_ = os.Chmod(dir, 0o777)
			}
			if fsGroup != nil {
				applyFSGroup(dir, *fsGroup, true)
			}
			out[vol.Name] = &volume{path: dir}
		case vol.HostPath != nil:
			p := vol.HostPath.Path
			if vol.HostPath.Type != nil && *vol.HostPath.Type == v1.HostPathDirectoryOrCreate {
				_ = os.MkdirAll(p, 0o755)
			}
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("hostPath %s: %v", p, err)
			}
			out[vol.Name] = &volume{path: p}
		case vol.ConfigMap != nil || vol.Secret != nil || vol.DownwardAPI != nil || vol.Projected != nil:
			files, err := k.payload(pod, w.facts(), vol, w.tokens)
			if err != nil {
				return nil, err
			}
			dir := filepath.Join(w.volumeRoot(), "projected", vol.Name)
			if _, err := writeAtomic(dir, files, gid); err != nil {
				return nil, err
			}
			out[vol.Name] = &volume{path: dir, readOnly: true, projected: true}
		default:
			return nil, fmt.Errorf("volume %s: this test kubelet does not support its type", vol.Name)
		}
	}
	return out, nil
}

// refreshVolumes rewrites configMap, secret, downwardAPI and projected volumes whose content
// changed (the kubelet does it within its sync period; here at once).
func (w *podWorker) refreshVolumes(pod *v1.Pod) {
	gid := -1
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		gid = int(*sc.FSGroup)
	}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		v := w.volumes[vol.Name]
		if v == nil || !v.projected {
			continue
		}
		files, err := w.k.payload(pod, w.facts(), vol, w.tokens)
		if err != nil {
			continue // the kubelet keeps the last content when the source is gone
		}
		if changed, err := writeAtomic(v.path, files, gid); err != nil {
			logf("%s: refresh volume %s: %v", w.key, vol.Name, err)
		} else if changed {
			logf("%s: volume %s updated", w.key, vol.Name)
		}
	}
}

// mountsFor is a container's bind mounts (volumeMounts, subPath and subPathExpr resolved) plus
// the kubelet-managed /etc/hosts, /etc/hostname and /etc/resolv.conf.
func (w *podWorker) mountsFor(c *v1.Container, env *envList) ([]mountSpec, error) {
	var out []mountSpec
	sorted := append([]v1.VolumeMount(nil), c.VolumeMounts...)
	// Parents before children.
	sort.SliceStable(sorted, func(i, j int) bool { return len(sorted[i].MountPath) < len(sorted[j].MountPath) })
	for _, m := range sorted {
		v := w.volumes[m.Name]
		if v == nil {
			return nil, configErrorf("volumeMount %s: no volume of that name", m.Name)
		}
		src := v.path
		sub := m.SubPath
		if m.SubPathExpr != "" {
			sub = expand(m.SubPathExpr, env.lookup)
		}
		file := false
		if sub != "" {
			if filepath.IsAbs(sub) || strings.Contains(sub, "..") {
				return nil, configErrorf("subPath %q must be relative and stay inside the volume", sub)
			}
			src = filepath.Join(v.path, sub)
			if resolved, err := filepath.EvalSymlinks(src); err == nil {
				src = resolved
			} else if !v.readOnly {
				// The kubelet creates a missing subPath directory.
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			} else {
				return nil, configErrorf("subPath %s of volume %s does not exist", sub, m.Name)
			}
			if st, err := os.Stat(src); err == nil && !st.IsDir() {
				file = true
			}
		}
		out = append(out, mountSpec{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly || v.readOnly, File: file})
	}
	for _, f := range []struct{ name, target string }{{"hosts", "/etc/hosts"}, {"hostname", "/etc/hostname"}, {"resolv.conf", "/etc/resolv.conf"}} {
		if !hasMount(c, f.target) {
			out = append(out, mountSpec{Source: filepath.Join(w.volumeRoot(), "etc", f.name), Target: f.target, File: true})
		}
	}
	return out, nil
}

func hasMount(c *v1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// claimPath is the host directory of a bound claim's volume (hostPath or local PVs).
func (k *kubelet) claimPath(ns, claim string) (string, error) {
	pvc, err := k.pvcs.PersistentVolumeClaims(ns).Get(claim)
	if err != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q not found", claim)
	}
	if pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound", claim)
	}
	pv, err := k.pvs.Get(pvc.Spec.VolumeName)
	if err != nil {
		return "", fmt.Errorf("persistentvolume %q of claim %q not found", pvc.Spec.VolumeName, claim)
	}
	var path string
	switch {
	case pv.Spec.HostPath != nil:
		path = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		path = pv.Spec.Local.Path
	default:
		return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes can be mounted here", pv.Name)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", err
	}
	return path, nil
}
