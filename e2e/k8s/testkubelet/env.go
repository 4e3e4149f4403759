package main

// The container environment, built as the kubelet builds it (pkg/kubelet/kubelet_pods.go,
// makeEnvironmentVariables): service links first, then envFrom, then env, each env value expanded
// with $(VAR) against what is defined so far; command and args are expanded against the result.

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// expand replaces $(VAR) with its value when VAR is defined, keeps $(VAR) as written when it is
// not, and turns $$ into $ (k8s.io/kubernetes/third_party/forked/golang/expansion).
func expand(input string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(input); i++ {
		if input[i] != '$' || i+1 >= len(input) {
			b.WriteByte(input[i])
			continue
		}
		switch input[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(input[i+2:], ')')
			if end < 0 {
				// An unclosed reference is kept as written.
				b.WriteString(input[i:])
				return b.String()
			}
			name := input[i+2 : i+2+end]
			if v, ok := lookup(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// envList keeps the order of first definition (the kubelet passes variables in that order) and
// the last value.
type envList struct {
	names  []string
	values map[string]string
}

func newEnvList() *envList { return &envList{values: map[string]string{}} }

func (e *envList) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *envList) lookup(name string) (string, bool) {
	v, ok := e.values[name]
	return v, ok
}

func (e *envList) environ() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.values[n])
	}
	return out
}

// objectSource gives the ConfigMaps, Secrets and Services of the pod's namespace.
type objectSource interface {
	configMap(ns, name string) (*v1.ConfigMap, error)
	secret(ns, name string) (*v1.Secret, error)
	services(ns string) []*v1.Service
}

// configError is the kubelet's CreateContainerConfigError: the container waits and is retried.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, a ...any) error { return &configError{fmt.Sprintf(format, a...)} }

// serviceEnv is the Docker-links style variables of enableServiceLinks (and always those of the
// `kubernetes` Service of `default`) — pkg/kubelet/envvars.
func serviceEnv(env *envList, pod *v1.Pod, src objectSource) {
	var svcs []*v1.Service
	seen := map[string]bool{}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		for _, s := range src.services(pod.Namespace) {
			svcs = append(svcs, s)
			seen[s.Name] = true
		}
	}
	if pod.Namespace != "default" || !seen["kubernetes"] {
		for _, s := range src.services("default") {
			if s.Name == "kubernetes" {
				svcs = append(svcs, s)
			}
		}
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	for _, s := range svcs {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		env.set(prefix+"_SERVICE_HOST", s.Spec.ClusterIP)
		env.set(prefix+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				env.set(prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port)))
			}
		}
		first := s.Spec.Ports[0]
		proto := strings.ToLower(string(first.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		env.set(prefix+"_PORT", fmt.Sprintf("%s://%s:%d", proto, s.Spec.ClusterIP, first.Port))
		for _, p := range s.Spec.Ports {
			pr := string(p.Protocol)
			if pr == "" {
				pr = "TCP"
			}
			base := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(pr))
			env.set(base, fmt.Sprintf("%s://%s:%d", strings.ToLower(pr), s.Spec.ClusterIP, p.Port))
			env.set(base+"_PROTO", strings.ToLower(pr))
			env.set(base+"_PORT", strconv.Itoa(int(p.Port)))
			env.set(base+"_ADDR", s.Spec.ClusterIP)
		}
	}
}

// podFacts is what the downward API may read besides the pod object itself.
type podFacts struct {
	podIP, hostIP string
	nodeCapacity  v1.ResourceList
}

// fieldValue answers a fieldRef (pkg/kubelet/kubelet_pods.go podFieldSelectorRuntimeValue and
// pkg/fieldpath).
func fieldValue(pod *v1.Pod, facts podFacts, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return facts.podIP, nil
	case "status.hostIP", "status.hostIPs":
		return facts.hostIP, nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if strings.HasPrefix(path, p.prefix+"[") && strings.HasSuffix(path, "]") {
			key := strings.Trim(path[len(p.prefix)+1:len(path)-1], `'"`)
			return p.m[key], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// formatMap is the downward API's `key="value"` lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return strings.Join(lines, "\n")
}

// resourceValue answers a resourceFieldRef: the container's limit, or the node's allocatable
// when the limit is not set (as the kubelet does), divided and rounded up.
func resourceValue(pod *v1.Pod, facts podFacts, defaultContainer string, ref *v1.ResourceFieldSelector) (string, error) {
	cname := ref.ContainerName
	if cname == "" {
		cname = defaultContainer
	}
	var c *v1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == cname {
			c = &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == cname {
			c = &pod.Spec.InitContainers[i]
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: no container %q", cname)
	}
	parts := strings.SplitN(ref.Resource, ".", 2)
	if len(parts) != 2 {
		return "", fmt.Errorf("unsupported resourceFieldRef %q", ref.Resource)
	}
	name := v1.ResourceName(parts[1])
	var q resource.Quantity
	var ok bool
	if parts[0] == "limits" {
		q, ok = c.Resources.Limits[name]
	} else {
		q, ok = c.Resources.Requests[name]
	}
	if !ok {
		if parts[0] == "requests" && name == v1.ResourceCPU {
			q, ok = resource.MustParse("0"), true
		} else {
			q, ok = facts.nodeCapacity[name]
		}
	}
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %q: no value", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == v1.ResourceCPU {
		v := int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))
		if v == 0 && parts[0] == "limits" {
			v = 1
		}
		return strconv.FormatInt(v, 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// containerEnv builds a container's environment; a missing non-optional ConfigMap, Secret or key
// is a configError.
func containerEnv(pod *v1.Pod, c *v1.Container, facts podFacts, src objectSource, hostname string) (*envList, error) {
	env := newEnvList()
	// What a container image usually brings (the images run here have no ENV of their own).
	env.set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	env.set("HOSTNAME", hostname)
	serviceEnv(env, pod, src)
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := src.configMap(pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
					continue
				}
				return nil, configErrorf("configmap %q not found", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := src.secret(pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if from.SecretRef.Optional != nil && *from.SecretRef.Optional {
					continue
				}
				return nil, configErrorf("secret %q not found", from.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := from.Prefix + k
			if len(validation.IsEnvVarName(name)) != 0 {
				continue // the kubelet skips invalid names (with an event)
			}
			env.set(name, data[k])
		}
	}
	for _, e := range c.Env {
		value := e.Value
		switch {
		case e.ValueFrom == nil:
			value = expand(e.Value, env.lookup)
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, facts, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, configErrorf("env %s: %v", e.Name, err)
			}
			value = v
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := resourceValue(pod, facts, c.Name, e.ValueFrom.ResourceFieldRef)
			if err != nil {
				return nil, configErrorf("env %s: %v", e.Name, err)
			}
			value = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			optional := ref.Optional != nil && *ref.Optional
			cm, err := src.configMap(pod.Namespace, ref.Name)
			if err != nil {
				if optional {
					continue
				}
				return nil, configErrorf("configmap %q not found", ref.Name)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if b, okb := cm.BinaryData[ref.Key]; okb {
					v, ok = string(b), true
				}
			}
			if !ok {
				if optional {
					continue
				}
				return nil, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			value = v
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			optional := ref.Optional != nil && *ref.Optional
			s, err := src.secret(pod.Namespace, ref.Name)
			if err != nil {
				if optional {
					continue
				}
				return nil, configErrorf("secret %q not found", ref.Name)
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			value = string(v)
		default:
			return nil, configErrorf("env %s: unsupported valueFrom", e.Name)
		}
		env.set(e.Name, value)
	}
	return env, nil
}
