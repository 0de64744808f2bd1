/* ppsize-tracer: run a command under ptrace and stop its tasks where `ppsize record`
 * needs to look at them, without changing what they do.
 *
 *   ppsize-tracer REPORT_FD ACK_FD SECCOMP(0|1) STDERR_FD -- CMD ARGS...
 *
 * Compiled by ppsize on first use (ppsize/recording/tracer.py). It forks CMD with
 * PTRACE_TRACEME and the options TRACEFORK, TRACEVFORK, TRACECLONE (every new task is
 * traced too), TRACEEXEC, TRACEEXIT (a task stops in do_exit before exit_mm, its memory
 * intact), TRACESECCOMP and EXITKILL (the tracees die with the tracer). With SECCOMP=1 the
 * child installs a seccomp filter returning SECCOMP_RET_TRACE for mmap without
 * MAP_ANONYMOUS, so the tracer sees every file mmap before it runs. One text line per
 * event goes to REPORT_FD; for the events marked "ack" the task stays stopped until one
 * byte arrives on ACK_FD. STDERR_FD (-1: none) becomes the command's stderr (ppsize reads
 * perf's own stderr, which the command would otherwise share):
 *
 *   start PID                       the command's first task, stopped before its execve
 *   fork PARENT CHILD               a new task (process or thread) of a traced task
 *   exec PID OLD_TID         ack    after a successful execve (PTRACE_EVENT_EXEC)
 *   mmap TID FD                     ack    a file mmap is about to run (seccomp stop)
 *   exit TID TGID LAST       ack if LAST=1: the last live thread of TGID is exiting
 *   status PID WAIT_STATUS          the command's first task is gone (waitpid status)
 *   error MESSAGE                   something failed; the tracer exits 126
 *
 * Exit status: the command's (128 + signal if it was killed), 126 on a tracer error,
 * 127 if the command could not be executed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NATIVE AUDIT_ARCH_AARCH64
#else
#error "ppsize-tracer supports x86-64 and arm64"
#endif

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#define SYSCALL_INFO_SECCOMP 3

struct syscall_info {               /* struct ptrace_syscall_info, include/uapi/linux/ptrace.h */
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t stack_pointer;
	union {
		struct { uint64_t nr; uint64_t args[6]; } entry;
		struct { int64_t rval; uint8_t is_error; } exit;
		struct { uint64_t nr; uint64_t args[6]; uint32_t ret_data; } seccomp;
	};
};

static int report_fd = -1, ack_fd = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(report_fd, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(126);         /* ppsize went away: EXITKILL ends the tracees */
		off += w;
	}
}

static void wait_ack(void)
{
	char c;
	for (;;) {
		ssize_t r = read(ack_fd, &c, 1);
		if (r == 1)
			return;
		if (r < 0 && errno == EINTR)
			continue;
		_exit(126);
	}
}

static void die(const char *what)
{
	say("error %s: %s", what, strerror(errno));
	_exit(126);
}

/* tasks we trace: tid -> tgid; "started": its first (SIGSTOP) stop was seen; "exiting":
 * it passed its PTRACE_EVENT_EXIT stop and no longer counts as a live thread */
static struct task { pid_t tid, tgid; int started, exiting; } *tasks;
static size_t ntasks, cap;

static struct task *find(pid_t tid)
{
	for (size_t i = 0; i < ntasks; i++)
		if (tasks[i].tid == tid)
			return &tasks[i];
	return NULL;
}

static pid_t read_tgid(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	FILE *f = fopen(path, "r");
	pid_t tgid = tid;
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static struct task *add(pid_t tid, int started)
{
	struct task *t = find(tid);
	if (t)
		return t;
	if (ntasks == cap) {
		cap = cap ? cap * 2 : 64;
		tasks = realloc(tasks, cap * sizeof(*tasks));
		if (!tasks)
			die("realloc");
	}
	t = &tasks[ntasks++];
	t->tid = tid;
	t->tgid = read_tgid(tid);
	t->started = started;
	t->exiting = 0;
	return t;
}

static void forget(pid_t tid)
{
	for (size_t i = 0; i < ntasks; i++)
		if (tasks[i].tid == tid) {
			tasks[i] = tasks[--ntasks];
			return;
		}
}

static size_t live_threads(pid_t tgid)
{
	size_t n = 0;
	for (size_t i = 0; i < ntasks; i++)
		n += tasks[i].tgid == tgid && !tasks[i].exiting;
	return n;
}

static void install_seccomp(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NATIVE, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* args[3] is the flags; its low word comes first (little-endian) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_ANONYMOUS, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (geteuid() != 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("prctl(PR_SET_NO_NEW_PRIVS)");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		die("prctl(PR_SET_SECCOMP)");
}

int main(int argc, char **argv)
{
	if (argc < 7 || strcmp(argv[5], "--")) {
		fprintf(stderr, "usage: %s REPORT_FD ACK_FD SECCOMP STDERR_FD -- CMD ARGS...\n", argv[0]);
		return 126;
	}
	report_fd = atoi(argv[1]);
	ack_fd = atoi(argv[2]);
	int seccomp = atoi(argv[3]);
	int stderr_fd = atoi(argv[4]);
	char **cmd = argv + 6;

	/* Ctrl-C reaches the command (same process group) and ends it normally; the tracer
	 * must outlive it to report its exit */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	pid_t root = fork();
	if (root < 0)
		die("fork");
	if (root == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		if (ptrace(PTRACE_TRACEME, 0, 0, 0))
			die("ptrace(PTRACE_TRACEME) (is ptrace allowed? see /proc/sys/kernel/yama/ptrace_scope)");
		raise(SIGSTOP);
		if (seccomp)
			install_seccomp();
		close(report_fd);
		close(ack_fd);
		if (stderr_fd >= 0) {
			dup2(stderr_fd, 2);
			close(stderr_fd);
		}
		execvp(cmd[0], cmd);
		int e = errno;
		dprintf(2, "ppsize record: cannot execute %s: %s\n", cmd[0], strerror(e));
		_exit(127);
	}
	if (stderr_fd >= 0)
		close(stderr_fd);
	int st;
	if (waitpid(root, &st, 0) != root || !WIFSTOPPED(st))
		die("waitpid for the command's first stop");
	long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
		    PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL;
	if (seccomp)
		opts |= PTRACE_O_TRACESECCOMP;
	if (ptrace(PTRACE_SETOPTIONS, root, 0, opts))
		die("ptrace(PTRACE_SETOPTIONS)");
	add(root, 1);
	say("start %d", root);
	if (ptrace(PTRACE_CONT, root, 0, 0))
		die("ptrace(PTRACE_CONT)");
	int root_status = 0;

	while (ntasks > 0) {
		pid_t pid = waitpid(-1, &st, __WALL);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECHILD)
				break;
			die("waitpid");
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			if (pid == root) {
				root_status = st;
				say("status %d %d", pid, st);
			}
			forget(pid);
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		int sig = WSTOPSIG(st), event = (unsigned)st >> 16;
		int inject = 0;
		struct task *t = find(pid);
		if (!t)                 /* its first stop came before its parent's fork event */
			t = add(pid, 0);
		if (!t->started && sig == SIGSTOP) {
			t->started = 1;     /* the stop every auto-attached task starts with */
			ptrace(PTRACE_CONT, pid, 0, 0);
			continue;
		}
		if (sig == SIGTRAP && event) {
			unsigned long msg = 0;
			ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
			switch (event) {
			case PTRACE_EVENT_FORK:
			case PTRACE_EVENT_VFORK:
			case PTRACE_EVENT_CLONE:
				add((pid_t)msg, 0);
				say("fork %d %lu", pid, msg);
				break;
			case PTRACE_EVENT_EXEC:
				/* de_thread: a non-leader that called execve now has the leader's tid */
				if ((pid_t)msg != pid)
					forget((pid_t)msg);
				t = find(pid);
				t->tgid = pid;
				say("exec %d %lu", pid, msg);
				wait_ack();
				break;
			case PTRACE_EVENT_EXIT: {
				pid_t tgid = t->tgid;
				t->exiting = 1;
				int last = live_threads(tgid) == 0;
				say("exit %d %d %d", pid, tgid, last);
				if (last)
					wait_ack();
				break;
			}
			case PTRACE_EVENT_SECCOMP: {
				struct syscall_info si;
				memset(&si, 0, sizeof(si));
				long n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(si), &si);
				if (n > 0 && si.op == SYSCALL_INFO_SECCOMP) {
					say("mmap %d %d", pid, (int)si.seccomp.args[4]);
					wait_ack();
				}
				break;
			}
			default:
				break;
			}
		} else if (sig == SIGTRAP) {
			/* not ours (a breakpoint?): deliver it */
			inject = sig;
		} else if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
			siginfo_t si;
			/* group-stop (GETSIGINFO fails with EINVAL): resume; signal-delivery-stop: deliver */
			inject = ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0 ? sig : 0;
		} else {
			inject = sig;
		}
		if (ptrace(PTRACE_CONT, pid, 0, inject) && errno != ESRCH)
			die("ptrace(PTRACE_CONT)");
	}
	if (WIFEXITED(root_status))
		return WEXITSTATUS(root_status);
	if (WIFSIGNALED(root_status))
		return 128 + WTERMSIG(root_status);
	return 0;
}
