//go:build ignore

// kubetrail's kernel sensor: process executions and exits, and TCP connections
// opened (with their outcome) or accepted, each stamped with the cgroup it
// happened in so that user space can name the container. Records go to one ring
// buffer; when it is full the loss is counted per CPU and per kind, never hidden.

#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ARGV_LEN 4096 // a power of two: the verifier bounds reads by masking with ARGV_LEN-1
#define PATH_LEN 256

enum kind {
	KIND_EXEC = 1,
	KIND_EXIT = 2,
	KIND_CONNECT = 3,
	KIND_ACCEPT = 4,
	KIND_FILE = 5,
	KIND_MAX = 6,
};

// What a file record says was done; user space names it (open, unlink, ...).
enum file_op {
	FILE_OPEN = 1,   // opened for writing, created or truncated
	FILE_UNLINK = 2,
	FILE_RMDIR = 3,
	FILE_RENAME = 4,
	FILE_CHMOD = 5,
	FILE_CHOWN = 6,
	FILE_MKDIR = 7,
};

#define FLAG_ARGV_TRUNCATED 1
#define FLAG_CWD_TRUNCATED 2

// The fields every record starts with.
struct header {
	__u32 kind;
	__u32 pid;  // thread group id: the process
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 loginuid;
	__u32 tty; // device number, 0 when none
	__u64 cgroup_id;
	__u64 time_ns;  // bpf_ktime_get_boot_ns
	__u64 start_ns; // the process' start, since boot: with pid, its identity per boot
	__u64 pstart_ns;
	char comm[16];
};

#define CWD_LEN 512 // a power of two, like ARGV_LEN
#define CWD_NAME 64 // the most read of one name; the buffer has this much slack
#define CWD_DEPTH 24

struct exec_record {
	struct header h;
	__u32 flags;
	__u32 argv_len;
	__u32 cwd_len;
	__u32 _pad;
	char filename[PATH_LEN];
	char argv[ARGV_LEN]; // NUL-separated, as the kernel keeps it
	char cwd[CWD_LEN + CWD_NAME]; // the working directory's names, innermost first, NUL-separated
};

struct exit_record {
	struct header h;
	__s32 exit_code;
	__u32 _pad;
};

struct conn_record {
	struct header h;
	__u16 family;
	__u16 sport; // host order
	__u16 dport;
	__u16 protocol; // IPPROTO_TCP (6) or IPPROTO_UDP (17)
	__s32 result; // 0 or a positive errno
	__u32 _pad2;
	__u8 saddr[16]; // IPv4 addresses in the first four bytes
	__u8 daddr[16];
};

struct file_record {
	struct header h;
	__u32 op;
	__s32 dirfd; // the directory a relative path is relative to; -100 is the working directory
	__u32 flags; // open flags
	__s32 result; // 0 or a positive errno
	__u32 cwd_len; // for a path relative to the working directory: that directory, as in exec_record
	__u32 cwd_flags;
	__s32 dirfd2; // the directory the new name of a rename is relative to
	__u32 _pad;
	char path[PATH_LEN];
	char path2[PATH_LEN]; // the new name, for a rename
	char cwd[CWD_LEN + CWD_NAME];
};

// Force the record types into BTF so bpf2go generates Go types for them.
const struct file_record *unused_file __attribute__((unused));
const struct exec_record *unused_exec __attribute__((unused));
const struct exit_record *unused_exit __attribute__((unused));
const struct conn_record *unused_conn __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

// lost[kind] counts records that did not fit in the ring buffer, per CPU.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// Connections between tcp_connect and their outcome, keyed by socket: the
// outcome arrives in softirq context, where the process is no longer current.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct header);
} pending SEC(".maps");

// File system calls are seen at entry (their arguments) and exit (their result);
// the entry waits here per thread.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct file_record);
} inflight SEC(".maps");

// A scratch record per CPU: too large for the BPF stack.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_record);
} scratch SEC(".maps");

// Path prefixes not worth recording (/proc, /sys, /dev, ...), set by user space.
#define EXCLUDE_MAX 8
#define EXCLUDE_LEN 32
struct exclude {
	__u32 len;
	char prefix[EXCLUDE_LEN];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EXCLUDE_MAX);
	__type(key, __u32);
	__type(value, struct exclude);
} excludes SEC(".maps");

// Waking the reader for every record costs a context switch each; records are
// instead submitted quietly until a quarter of the buffer is waiting, and the
// reader also polls on its own every few tens of milliseconds.
#define WAKEUP_BYTES (4 << 20)

static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void count_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

// The task pointers here are BTF-typed (tp_btf arguments, or
// bpf_get_current_task_btf), so fields are read with plain loads: the verifier
// turns each into a fault-safe load, with no helper call. These run for every
// record, and a helper call per field was most of their cost.
static __always_inline __u32 tty_of(struct task_struct *task)
{
	struct tty_struct *tty = task->signal->tty;
	if (!tty)
		return 0;
	__u32 major = tty->driver->major;
	__u32 minor = tty->driver->minor_start + tty->index;
	// The kernel's new_encode_dev, as /proc/PID/stat reports tty_nr.
	return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
}

static __always_inline void fill_header(struct header *h, __u32 kind, struct task_struct *task)
{
	h->kind = kind;
	h->pid = task->tgid;
	h->tid = task->pid;
	struct task_struct *parent = task->real_parent;
	h->ppid = parent->tgid;
	const struct cred *cred = task->cred;
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	if (bpf_core_field_exists(task->loginuid))
		h->loginuid = task->loginuid.val;
	else
		h->loginuid = (__u32)-1;
	h->tty = tty_of(task);
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->time_ns = bpf_ktime_get_boot_ns();
	// The process' start is its main thread's: a thread's own start would give
	// every thread of a process a different identity. Boot-based, as /proc's
	// starttime is, so that processes seeded from /proc get the same exec ids.
	struct task_struct *leader = task->group_leader;
	struct task_struct *pleader = parent->group_leader;
	if (bpf_core_field_exists(task->start_boottime)) {
		h->start_ns = leader->start_boottime;
		h->pstart_ns = pleader->start_boottime;
	} else {
		h->start_ns = leader->start_time;
		h->pstart_ns = pleader->start_time;
	}
	__builtin_memcpy(h->comm, task->comm, sizeof(h->comm));
}

// read_cwd writes the names of the working directory from the innermost up,
// crossing at most CWD_MOUNTS mount points, as NUL-terminated strings; user space
// reverses them. A deeper or longer directory is cut and flagged. The walk is two
// small loops rather than one with the crossing inside: the verifier explores
// every path through a loop body, and one body with both blew its budget.
#define CWD_MOUNTS 3
#define CWD_NAMES 12

static __always_inline __u32 read_cwd(char *buf, __u32 *flags, struct task_struct *task)
{
	struct dentry *d = BPF_CORE_READ(task, fs, pwd.dentry);
	struct vfsmount *vm = BPF_CORE_READ(task, fs, pwd.mnt);
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct mount *m = (struct mount *)((void *)vm - mnt_off);
	__u32 off = 0;
	for (int mi = 0; mi < CWD_MOUNTS; mi++) {
		struct dentry *root = BPF_CORE_READ(vm, mnt_root);
		for (int i = 0; i < CWD_NAMES; i++) {
			struct dentry *parent = BPF_CORE_READ(d, d_parent);
			if (d == root || d == parent || off >= CWD_LEN)
				break;
			long n = bpf_probe_read_kernel_str(&buf[off & (CWD_LEN - 1)], CWD_NAME, BPF_CORE_READ(d, d_name.name));
			if (n <= 0)
				break;
			off += n;
			d = parent;
		}
		if (d != root) {
			// Either the filesystem's own root (a chroot, a lazily unmounted
			// directory), or the names ran out: say which.
			if (d != BPF_CORE_READ(d, d_parent))
				*flags |= FLAG_CWD_TRUNCATED;
			return off;
		}
		struct mount *up = BPF_CORE_READ(m, mnt_parent);
		if (up == m)
			return off; // the root of the whole tree
		d = BPF_CORE_READ(m, mnt_mountpoint);
		m = up;
		vm = (struct vfsmount *)((void *)m + mnt_off);
	}
	*flags |= FLAG_CWD_TRUNCATED;
	return off;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm)
{
	struct exec_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_EXEC);
		return 0;
	}
	fill_header(&r->h, KIND_EXEC, task);
	r->flags = 0;
	bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), BPF_CORE_READ(bprm, filename));

	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long len = end - start;
	if (len > ARGV_LEN) {
		len = ARGV_LEN;
		r->flags |= FLAG_ARGV_TRUNCATED;
	}
	len &= ARGV_LEN - 1;
	if (len == 0 && end > start)
		len = ARGV_LEN - 1; // exactly ARGV_LEN bytes: keep all but the last
	if (bpf_probe_read_user(r->argv, len, (void *)start) < 0)
		len = 0;
	r->argv_len = len;
	r->cwd_len = read_cwd(r->cwd, &r->flags, task);
	bpf_ringbuf_submit(r, wakeup_flag());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	// Threads exit too; the process ends with its thread group leader.
	if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
		return 0;
	struct exit_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_EXIT);
		return 0;
	}
	fill_header(&r->h, KIND_EXIT, task);
	// A process killed by a signal has the signal in the low bits and no exit
	// status: report it as shells do, 128 plus the signal.
	int code = BPF_CORE_READ(task, exit_code);
	r->exit_code = (code & 0x7f) ? 128 + (code & 0x7f) : (code >> 8) & 0xff;
	bpf_ringbuf_submit(r, wakeup_flag());
	return 0;
}

static __always_inline void read_tuple(struct conn_record *r, const struct sock *sk, bool local_is_source)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u8 laddr[16] = {}, raddr[16] = {};
	if (family == 2) { // AF_INET
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(laddr, &l, 4);
		__builtin_memcpy(raddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)raddr, sk, __sk_common.skc_v6_daddr);
	}
	r->family = family;
	if (local_is_source) {
		r->sport = lport;
		r->dport = rport;
		__builtin_memcpy(r->saddr, laddr, 16);
		__builtin_memcpy(r->daddr, raddr, 16);
	} else {
		r->sport = rport;
		r->dport = lport;
		__builtin_memcpy(r->saddr, raddr, 16);
		__builtin_memcpy(r->daddr, laddr, 16);
	}
}

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7

// A connection's state changes mark its life. CLOSE -> SYN_SENT happens inside
// connect(), in the connecting process: remember who that was. The handshake's end
// (SYN_SENT -> ESTABLISHED, or -> CLOSE with the reason in sk_err) comes later in
// softirq context, where the process is no longer current: emit then, with it.
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_set_state, const struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	if (oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT) {
		struct header h = {};
		fill_header(&h, KIND_CONNECT, (struct task_struct *)bpf_get_current_task_btf());
		bpf_map_update_elem(&pending, &key, &h, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	struct header *h = bpf_map_lookup_elem(&pending, &key);
	if (!h)
		return 0;
	struct conn_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_CONNECT);
		bpf_map_delete_elem(&pending, &key);
		return 0;
	}
	__builtin_memcpy(&r->h, h, sizeof(*h));
	read_tuple(r, sk, true);
	r->protocol = 6;
	r->result = 0;
	if (newstate != TCP_ESTABLISHED) {
		r->result = BPF_CORE_READ(sk, sk_err);
		if (r->result == 0)
			r->result = 111; // ECONNREFUSED: closed during the handshake without a recorded error
	}
	bpf_ringbuf_submit(r, wakeup_flag());
	bpf_map_delete_elem(&pending, &key);
	return 0;
}

#define NR_CONNECT 42
#define NR_SENDTO 44
#define IPPROTO_UDP 17
#define AF_INET 2
#define AF_INET6 10

// A UDP connect or sendto seen at entry: the destination the caller gave.
struct udp_dest {
	__u16 family;
	__u16 port; // host order
	__u8 addr[16];
	__u32 fd;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct udp_dest);
} udp_inflight SEC(".maps");

// UDP "connections" already reported, per socket and destination: a datagram
// socket sends many times to one peer (DNS retries, streams); the first is what
// the trail needs, not a flood.
struct udp_seen_key {
	// The socket's address is reused by the kernel once it is freed: with the
	// process' identity beside it, a new socket of another process is not taken
	// for one already reported.
	__u64 sk;
	__u32 tgid;
	__u32 _pad0;
	__u64 start;
	__u16 port;
	__u16 _pad[3];
	__u8 addr[16];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct udp_seen_key);
	__type(value, __u8);
} udp_seen SEC(".maps");

#define NR_ACCEPT 43
#define NR_ACCEPT4 288
#define NR_OPEN 2
#define NR_RENAME 82
#define NR_MKDIR 83
#define NR_CREAT 85
#define NR_UNLINK 87
#define NR_CHMOD 90
#define NR_CHOWN 92
#define NR_LCHOWN 94
#define NR_OPENAT 257
#define NR_MKDIRAT 258
#define NR_FCHOWNAT 260
#define NR_UNLINKAT 263
#define NR_RENAMEAT 264
#define NR_FCHMODAT 268
#define NR_RENAMEAT2 316
#define NR_FCHMODAT2 452

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000

// leads_elsewhere reports whether a path may reach a file outside the prefix it
// starts with: a ".." step, or a link to another place (/proc/PID/root, cwd and fd,
// /proc/self, /dev/fd, /dev/std*). Such paths are never excluded, or writing to
// "/dev/../etc/cron.d/x" would go unrecorded.
static __always_inline bool leads_elsewhere(const char *p)
{
	if (p[0] == '/' && p[1] == 'p' && p[2] == 'r' && p[3] == 'o' && p[4] == 'c' && p[5] == '/' &&
	    ((p[6] >= '0' && p[6] <= '9') || p[6] == 's' || p[6] == 't'))
		return true;
	if (p[0] == '/' && p[1] == 'd' && p[2] == 'e' && p[3] == 'v' && p[4] == '/' &&
	    ((p[5] == 'f' && p[6] == 'd') || (p[5] == 's' && p[6] == 't' && p[7] == 'd')))
		return true;
	for (int i = 0; i < PATH_LEN - 2; i++) {
		if (p[i] == 0)
			break;
		if (p[i] == '.' && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') && (p[i + 2] == '/' || p[i + 2] == 0))
			return true;
	}
	return false;
}

static __always_inline bool excluded(const char *path)
{
	if (path[0] != '/')
		return false; // relative: user space decides once it is resolved
	if (leads_elsewhere(path))
		return false;
	for (__u32 i = 0; i < EXCLUDE_MAX; i++) {
		__u32 key = i;
		struct exclude *x = bpf_map_lookup_elem(&excludes, &key);
		if (!x || x->len == 0 || x->len > EXCLUDE_LEN)
			continue;
		bool match = true;
		for (__u32 j = 0; j < EXCLUDE_LEN; j++) {
			if (j >= x->len)
				break;
			if (path[j] != x->prefix[j]) {
				match = false;
				break;
			}
		}
		// "/proc" excludes "/proc" and "/proc/...", not "/processes".
		if (match && x->len < PATH_LEN && (path[x->len & (PATH_LEN - 1)] == '/' || path[x->len & (PATH_LEN - 1)] == 0))
			return true;
	}
	return false;
}

static __always_inline struct sock *sock_of_fd(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

// udp_enter notes the destination of a connect or sendto; whether the socket is
// UDP is checked at exit, once the call has succeeded.
static __always_inline void udp_enter(long fd, const void *addr)
{
	if (!addr)
		return;
	struct udp_dest d = {.fd = fd};
	bpf_probe_read_user(&d.family, sizeof(d.family), addr);
	if (d.family == AF_INET) {
		struct sockaddr_in_user sa;
		if (bpf_probe_read_user(&sa, sizeof(sa), addr) < 0)
			return;
		d.port = bpf_ntohs(sa.port);
		__builtin_memcpy(d.addr, sa.addr, 4);
	} else if (d.family == AF_INET6) {
		struct sockaddr_in6_user sa;
		if (bpf_probe_read_user(&sa, sizeof(sa), addr) < 0)
			return;
		d.port = bpf_ntohs(sa.port);
		__builtin_memcpy(d.addr, sa.addr, 16);
	} else {
		return;
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&udp_inflight, &tid, &d, BPF_ANY);
}

static __always_inline void udp_exit(struct task_struct *task, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct udp_dest *d = bpf_map_lookup_elem(&udp_inflight, &tid);
	if (!d)
		return;
	struct udp_dest dest = *d;
	bpf_map_delete_elem(&udp_inflight, &tid);
	if (ret < 0)
		return;
	struct sock *sk = sock_of_fd(task, dest.fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
		return;
	struct udp_seen_key key = {.sk = (__u64)sk, .port = dest.port, .tgid = BPF_CORE_READ(task, tgid),
				   .start = BPF_CORE_READ(task, group_leader, start_time)};
	__builtin_memcpy(key.addr, dest.addr, 16);
	__u8 one = 1;
	if (bpf_map_update_elem(&udp_seen, &key, &one, 1 /* BPF_NOEXIST */) != 0)
		return; // reported before
	struct conn_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_CONNECT);
		return;
	}
	fill_header(&r->h, KIND_CONNECT, task);
	read_tuple(r, sk, true); // the local end, bound by now
	// The destination as the caller gave it: an unconnected socket has none.
	r->family = dest.family;
	r->dport = dest.port;
	__builtin_memcpy(r->daddr, dest.addr, 16);
	r->protocol = IPPROTO_UDP;
	r->result = 0;
	bpf_ringbuf_submit(r, wakeup_flag());
}

SEC("tp_btf/sys_enter")
int BPF_PROG(handle_sys_enter, struct pt_regs *regs, long id)
{
	if (id == NR_CONNECT) {
		udp_enter((int)regs->di, (const void *)regs->si);
		return 0;
	}
	if (id == NR_SENDTO) {
		udp_enter((int)regs->di, (const void *)regs->r8);
		return 0;
	}
	__u32 op = 0;
	long dirfd = AT_FDCWD, dirfd2 = AT_FDCWD, flags = 0;
	const char *path = 0, *path2 = 0;
	switch (id) {
	case NR_OPEN:
		op = FILE_OPEN, path = (const char *)regs->di, flags = (unsigned int)regs->si;
		break;
	case NR_CREAT:
		op = FILE_OPEN, path = (const char *)regs->di, flags = O_CREAT | O_WRONLY | O_TRUNC;
		break;
	case NR_OPENAT:
		op = FILE_OPEN, dirfd = (int)regs->di, path = (const char *)regs->si, flags = (unsigned int)regs->dx;
		break;
	case NR_UNLINK:
		op = FILE_UNLINK, path = (const char *)regs->di;
		break;
	case NR_UNLINKAT:
		dirfd = (int)regs->di, path = (const char *)regs->si;
		op = (regs->dx & AT_REMOVEDIR) ? FILE_RMDIR : FILE_UNLINK;
		break;
	case NR_RENAME:
		op = FILE_RENAME, path = (const char *)regs->di, path2 = (const char *)regs->si;
		break;
	case NR_RENAMEAT:
	case NR_RENAMEAT2:
		// Each name is relative to its own directory.
		op = FILE_RENAME, dirfd = (int)regs->di, path = (const char *)regs->si,
		dirfd2 = (int)regs->dx, path2 = (const char *)regs->r10;
		break;
	case NR_CHMOD:
		op = FILE_CHMOD, path = (const char *)regs->di;
		break;
	case NR_FCHMODAT:
	case NR_FCHMODAT2:
		op = FILE_CHMOD, dirfd = (int)regs->di, path = (const char *)regs->si;
		break;
	case NR_CHOWN:
	case NR_LCHOWN:
		op = FILE_CHOWN, path = (const char *)regs->di;
		break;
	case NR_FCHOWNAT:
		op = FILE_CHOWN, dirfd = (int)regs->di, path = (const char *)regs->si;
		break;
	case NR_MKDIR:
		op = FILE_MKDIR, path = (const char *)regs->di;
		break;
	case NR_MKDIRAT:
		op = FILE_MKDIR, dirfd = (int)regs->di, path = (const char *)regs->si;
		break;
	default:
		return 0;
	}
	// Reads are not changes: only opens that may write, create or truncate count.
	if (op == FILE_OPEN && !(flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)))
		return 0;
	__u32 zero = 0;
	struct file_record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return 0;
	r->op = op;
	r->dirfd = dirfd;
	r->dirfd2 = dirfd2;
	r->flags = flags;
	r->result = 0;
	r->path[0] = 0;
	r->path2[0] = 0;
	bpf_probe_read_user_str(r->path, sizeof(r->path), path);
	if (path2)
		bpf_probe_read_user_str(r->path2, sizeof(r->path2), path2);
	if (excluded(r->path))
		return 0;
	r->cwd_len = 0;
	r->cwd_flags = 0;
	if (r->path[0] != '/' && dirfd == AT_FDCWD)
		r->cwd_len = read_cwd(r->cwd, &r->cwd_flags, (struct task_struct *)bpf_get_current_task_btf());
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, r, BPF_ANY);
	return 0;
}

static __always_inline bool file_syscall(long nr)
{
	switch (nr) {
	case NR_OPEN: case NR_CREAT: case NR_OPENAT: case NR_UNLINK: case NR_UNLINKAT:
	case NR_RENAME: case NR_RENAMEAT: case NR_RENAMEAT2: case NR_CHMOD: case NR_FCHMODAT:
	case NR_FCHMODAT2: case NR_CHOWN: case NR_LCHOWN: case NR_FCHOWNAT: case NR_MKDIR: case NR_MKDIRAT:
		return true;
	}
	return false;
}

// emit_file finishes a file system call seen at entry.
static __always_inline void emit_file(struct task_struct *task, long nr, long ret)
{
	if (!file_syscall(nr))
		return;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct file_record *pending = bpf_map_lookup_elem(&inflight, &tid);
	if (!pending)
		return;
	struct file_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_FILE);
		bpf_map_delete_elem(&inflight, &tid);
		return;
	}
	// Too large for an inline copy: the helper copies it.
	bpf_probe_read_kernel(r, sizeof(*r), pending);
	fill_header(&r->h, KIND_FILE, task);
	r->result = ret < 0 ? -ret : 0;
	bpf_ringbuf_submit(r, wakeup_flag());
	bpf_map_delete_elem(&inflight, &tid);
}

// accept() and accept4() return the new connection's descriptor in the accepting
// process: follow it to the socket.
SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	// regs is a trusted BTF pointer here: a direct load, not a helper call, on
	// this path that every system call takes.
	long nr = regs->orig_ax;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	if (nr == NR_CONNECT || nr == NR_SENDTO) {
		udp_exit(task, ret);
		return 0;
	}
	if (nr != NR_ACCEPT && nr != NR_ACCEPT4) {
		emit_file(task, nr, ret);
		return 0;
	}
	if (ret < 0)
		return 0;
	struct sock *sk = sock_of_fd(task, ret);
	if (!sk)
		return 0;
	// Only TCP over IP: accept() also serves Unix sockets.
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) || BPF_CORE_READ(sk, sk_protocol) != 6)
		return 0;
	struct conn_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_ACCEPT);
		return 0;
	}
	fill_header(&r->h, KIND_ACCEPT, task);
	read_tuple(r, sk, false);
	r->protocol = 6;
	r->result = 0;
	bpf_ringbuf_submit(r, wakeup_flag());
	return 0;
}
