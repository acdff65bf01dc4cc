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
	KIND_MAX = 5,
};

#define FLAG_ARGV_TRUNCATED 1

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

struct exec_record {
	struct header h;
	__u32 flags;
	__u32 argv_len;
	char filename[PATH_LEN];
	char argv[ARGV_LEN]; // NUL-separated, as the kernel keeps it
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
	__u16 _pad;
	__s32 result; // 0 or a positive errno
	__u32 _pad2;
	__u8 saddr[16]; // IPv4 addresses in the first four bytes
	__u8 daddr[16];
};

// Force the record types into BTF so bpf2go generates Go types for them.
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

static __always_inline void count_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline __u32 tty_of(struct task_struct *task)
{
	struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);
	if (!tty)
		return 0;
	__u32 major = BPF_CORE_READ(tty, driver, major);
	__u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
	// The kernel's new_encode_dev, as /proc/PID/stat reports tty_nr.
	return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
}

static __always_inline void fill_header(struct header *h, __u32 kind, struct task_struct *task)
{
	h->kind = kind;
	h->pid = BPF_CORE_READ(task, tgid);
	h->tid = BPF_CORE_READ(task, pid);
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = BPF_CORE_READ(task, cred, uid.val);
	h->gid = BPF_CORE_READ(task, cred, gid.val);
	if (bpf_core_field_exists(task->loginuid))
		h->loginuid = BPF_CORE_READ(task, loginuid.val);
	else
		h->loginuid = (__u32)-1;
	h->tty = tty_of(task);
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->time_ns = bpf_ktime_get_boot_ns();
	h->start_ns = BPF_CORE_READ(task, start_time);
	h->pstart_ns = BPF_CORE_READ(task, real_parent, start_time);
	BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
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
	bpf_ringbuf_submit(r, 0);
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
	r->exit_code = BPF_CORE_READ(task, exit_code) >> 8;
	bpf_ringbuf_submit(r, 0);
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
	r->result = 0;
	if (newstate != TCP_ESTABLISHED) {
		r->result = BPF_CORE_READ(sk, sk_err);
		if (r->result == 0)
			r->result = 111; // ECONNREFUSED: closed during the handshake without a recorded error
	}
	bpf_ringbuf_submit(r, 0);
	bpf_map_delete_elem(&pending, &key);
	return 0;
}

#define NR_ACCEPT 43
#define NR_ACCEPT4 288

// accept() and accept4() return the new connection's descriptor in the accepting
// process: follow it to the socket.
SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	if (ret < 0)
		return 0;
	long nr = BPF_CORE_READ(regs, orig_ax);
	if (nr != NR_ACCEPT && nr != NR_ACCEPT4)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || ret >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[ret]);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	struct conn_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(KIND_ACCEPT);
		return 0;
	}
	fill_header(&r->h, KIND_ACCEPT, task);
	read_tuple(r, sk, false);
	r->result = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}
