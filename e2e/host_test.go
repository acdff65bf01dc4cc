//go:build e2e

package e2e

// What a kubelet and containerd leave on the host outside their directories,
// and how it is removed: mounts under the work directory, the kubepods cgroups,
// the CNI bridge, and the kubelet's iptables chains.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cgroupRoots are the mounted cgroup hierarchies: every v1 controller, the v2
// hierarchy of a hybrid host (unified), or /sys/fs/cgroup itself on a pure v2 host.
func cgroupRoots() []string {
	var roots []string
	candidates, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range append(candidates, "/sys/fs/cgroup") {
		if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
			roots = append(roots, r)
		}
	}
	return roots
}

// kubepodsDirs are the kubelet's top cgroups (cgroupfs driver) that exist.
func kubepodsDirs() []string {
	var dirs []string
	for _, r := range cgroupRoots() {
		d := filepath.Join(r, "kubepods")
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// cgroupPIDs lists the processes in a cgroup tree.
func cgroupPIDs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// The kubelet's own iptables chains (kube-proxy's are not made here): it hooks
// KUBE-FIREWALL into INPUT and OUTPUT and keeps canary chains to notice a
// firewall reload.
var kubeletChains = []string{"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"}

// iptablesState records which of the kubelet's chains exist, per command
// (iptables, ip6tables) and table, so that the cleanup removes only those the
// test's kubelet made.
type iptablesState map[string]bool // "iptables/filter/KUBE-FIREWALL" -> exists

var iptablesTables = []string{"filter", "nat", "mangle"}

func iptablesCommands() []string {
	var cmds []string
	for _, c := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(c); err == nil {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

func readIptables() iptablesState {
	st := iptablesState{}
	for _, c := range iptablesCommands() {
		for _, table := range iptablesTables {
			out, err := exec.Command(c, "-w", "5", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && slices.Contains(kubeletChains, f[1]) {
					st[c+"/"+table+"/"+f[1]] = true
				}
			}
		}
	}
	return st
}

// removeKubeletChains deletes the kubelet's chains that were not there before,
// and every rule that jumps to them.
func removeKubeletChains(before iptablesState) error {
	var errs []error
	now := readIptables()
	for _, c := range iptablesCommands() {
		for _, table := range iptablesTables {
			var chains []string
			for _, ch := range kubeletChains {
				key := c + "/" + table + "/" + ch
				if now[key] && !before[key] {
					chains = append(chains, ch)
				}
			}
			if len(chains) == 0 {
				continue
			}
			out, err := exec.Command(c, "-w", "5", "-t", table, "-S").Output()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -S: %w", c, table, err))
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				args := splitRule(line)
				if len(args) < 2 || args[0] != "-A" || slices.Contains(chains, args[1]) {
					continue
				}
				if j := slices.Index(args, "-j"); j < 0 || j+1 >= len(args) || !slices.Contains(chains, args[j+1]) {
					continue
				}
				args[0] = "-D"
				if _, err := run(c, append([]string{"-w", "5", "-t", table}, args...)...); err != nil {
					errs = append(errs, err)
				}
			}
			for _, ch := range chains {
				if _, err := run(c, "-w", "5", "-t", table, "-F", ch); err != nil {
					errs = append(errs, err)
				}
			}
			for _, ch := range chains {
				if _, err := run(c, "-w", "5", "-t", table, "-X", ch); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// splitRule splits a line of `iptables -S` into arguments; comments are quoted.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, has := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '"':
			inQuote, has = !inQuote, true
		case ch == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == ' ' && !inQuote:
			if has {
				args = append(args, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteByte(ch)
			has = true
		}
	}
	if has {
		args = append(args, cur.String())
	}
	return args
}

// deleteLink removes a network interface (the CNI bridge) if it exists.
func deleteLink(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err != nil {
		return nil
	}
	_, err := run("ip", "link", "delete", name)
	return err
}

// removeContainerLogLinks removes the kubelet's links in /var/log/containers to
// logs under podLogs (that directory is hard-wired in the kubelet; the links'
// targets are under the test's own podLogsDir).
func removeContainerLogLinks(podLogs string) error {
	entries, err := os.ReadDir("/var/log/containers")
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join("/var/log/containers", e.Name())
		target, err := os.Readlink(p)
		if err != nil || !strings.HasPrefix(target, podLogs+"/") {
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
