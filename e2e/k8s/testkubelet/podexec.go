package main

// The container side of a start: the test kubelet runs itself again as
// `dispotify-testkubelet __container SPEC-JSON`, in a new mount and UTS namespace (clone flags),
// and this code joins the pod's network namespace, makes the pod's mounts, drops privileges and
// execs the container's command. Errors before the exec go to fd 3, which the exec closes: the
// kubelet reads fd 3 to tell a failed start (StartError) from a started container.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

type mountSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	File     bool   `json:"file,omitempty"` // the source is a file: the target is made a file
}

type execSpec struct {
	NetNS        string      `json:"netns,omitempty"` // /run/netns/NAME; empty: host network
	Hostname     string      `json:"hostname"`
	Mounts       []mountSpec `json:"mounts"`
	ReadOnlyRoot bool        `json:"readOnlyRoot,omitempty"`
	UID          *int64      `json:"uid,omitempty"`
	GID          *int64      `json:"gid,omitempty"`
	Groups       []int64     `json:"groups,omitempty"`
	NoNewPrivs   bool        `json:"noNewPrivs,omitempty"`
	WorkingDir   string      `json:"workingDir,omitempty"`
	Path         string      `json:"path"`
	Argv         []string    `json:"argv"`
	Env          []string    `json:"env"`
	ParentPID    int         `json:"parentPid"`
}

func init() {
	// setns(CLONE_NEWNET) changes the calling thread only: the exec must come from that thread.
	if len(os.Args) > 1 && os.Args[1] == "__container" {
		runtime.LockOSThread()
	}
}

func containerMain(specJSON string) {
	errPipe := os.NewFile(3, "errpipe")
	fail := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if errPipe != nil {
			fmt.Fprint(errPipe, msg)
		}
		fmt.Fprintln(os.Stderr, "testkubelet: container start failed: "+msg)
		os.Exit(128)
	}
	syscall.CloseOnExec(3)
	var s execSpec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		fail("bad spec: %v", err)
	}
	// Our mounts stay in this mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail("make / private: %v", err)
	}
	if s.NetNS != "" {
		fd, err := unix.Open(s.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fail("open %s: %v", s.NetNS, err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			fail("setns %s: %v", s.NetNS, err)
		}
		unix.Close(fd)
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			fail("sethostname: %v", err)
		}
	}
	// Mount points. A container image would have them or its runtime would create them inside
	// the container's root; this kubelet runs pods on the host's root filesystem, so a missing
	// mount point (e.g. /var/lib/dispotify, /etc/dispotify) IS CREATED ON THE HOST, empty, as
	// root, and left there. Nothing of the host is hidden: the volume is mounted over it only in
	// the pod's own mount namespace. Each is made just before its bind (parents first), so a
	// mount point under another volume is made inside that volume, as a runtime would.
	// Every source is opened before the first bind: a volume mounted over a parent of the state
	// directory (an emptyDir on /tmp while the state directory is under /tmp) would otherwise hide
	// the sources of the mounts after it. The binds then go through /proc/self/fd.
	// The entrypoint likewise (a binary under a build tree in /tmp, say), executed through its fd.
	exe := s.Path
	if fd, err := unix.Open(s.Path, unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
		exe = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	sources := make([]string, len(s.Mounts))
	for i, m := range s.Mounts {
		fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			fail("open %s: %v", m.Source, err)
		}
		sources[i] = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	for i, m := range s.Mounts {
		if _, err := os.Stat(m.Target); err != nil {
			if m.File {
				if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
					fail("create mount point %s: %v", m.Target, err)
				}
				f, err := os.OpenFile(m.Target, os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					fail("create mount point %s: %v", m.Target, err)
				}
				f.Close()
			} else if err := os.MkdirAll(m.Target, 0o755); err != nil {
				fail("create mount point %s: %v", m.Target, err)
			}
		}
		if err := unix.Mount(sources[i], m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			fail("bind %s on %s: %v", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				fail("read-only %s: %v", m.Target, err)
			}
		}
	}
	// After the binds: a bind mount takes the flags of its source's mount, so the volumes must be
	// mounted while the host's mounts are still writable, and are then left out.
	if s.ReadOnlyRoot {
		keep := map[string]bool{}
		for _, m := range s.Mounts {
			if !m.ReadOnly {
				keep[filepath.Clean(m.Target)] = true
			}
		}
		if err := readOnlyRoot(keep); err != nil {
			fail("read-only root filesystem: %v", err)
		}
	}
	if s.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail("no_new_privs: %v", err)
		}
	}
	if s.GID != nil || s.UID != nil || len(s.Groups) > 0 {
		groups := make([]int, 0, len(s.Groups))
		for _, g := range s.Groups {
			groups = append(groups, int(g))
		}
		if err := syscall.Setgroups(groups); err != nil {
			fail("setgroups: %v", err)
		}
	}
	if s.GID != nil {
		if err := syscall.Setgid(int(*s.GID)); err != nil {
			fail("setgid: %v", err)
		}
	}
	if s.UID != nil {
		if err := syscall.Setuid(int(*s.UID)); err != nil {
			fail("setuid: %v", err)
		}
	}
	// Changing credentials clears the parent-death signal: set it again, and give up if the
	// kubelet is already gone.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	if os.Getppid() != s.ParentPID {
		fail("the kubelet exited")
	}
	wd := s.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := os.Chdir(wd); err != nil {
		fail("chdir %s: %v", wd, err)
	}
	if err := syscall.Exec(exe, s.Argv, s.Env); err != nil {
		fail("exec %s: %v", s.Path, err)
	}
}

// readOnlyRoot remounts read-only every mount of this namespace but the kernel's (/proc, /sys,
// /dev) and the network namespace files, like a container's readOnlyRootFilesystem.
func readOnlyRoot(keep map[string]bool) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		skip := false
		for _, keep := range []string{"/proc", "/sys", "/dev", "/run/netns"} {
			if p == keep || strings.HasPrefix(p, keep+"/") {
				skip = true
			}
		}
		if !skip && !keep[p] {
			points = append(points, p)
		}
	}
	sort.Strings(points)
	for _, p := range points {
		if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			// A mount whose flags cannot change (a locked one) stays as it is.
			fmt.Fprintf(os.Stderr, "testkubelet: cannot make %s read-only: %v\n", p, err)
		}
	}
	return nil
}

func unescapeMountPath(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}
