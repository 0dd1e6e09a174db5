/*
 * LD_PRELOAD shim for Debian's user-mode Linux 6.1 (linux.uml) on hosts with
 * a large XSAVE area (AVX-512, AMX, PKRU).
 *
 * UML 6.1 saves and restores a guest thread's FPU state with
 * ptrace(PTRACE_GETREGSET / PTRACE_SETREGSET, NT_X86_XSTATE) through a fixed
 * 832-byte buffer (legacy area + header + AVX).  The host kernel rejects a
 * SETREGSET that is not exactly its full XSAVE size with EFAULT, so the first
 * guest process dies with "userspace - ptrace set fp regs failed, errno = 14".
 * Falling back to PTRACE_GETFPREGS is not enough either: the host resets the
 * AVX/AVX-512 registers whenever UML's page-fault stub takes a signal, which
 * corrupts glibc's EVEX string functions in the guest (ls segfaults, python
 * hangs).
 *
 * This shim keeps, for every buffer address UML uses, a shadow buffer of the
 * host's full size: GETREGSET fills the shadow and hands UML its prefix;
 * SETREGSET copies UML's (possibly edited) prefix into the shadow and writes
 * the whole shadow back.  Every guest thread therefore keeps its complete
 * register state.  Requests that already fit are passed through untouched.
 *
 * It also sets PR_SET_PDEATHSIG so that a guest never outlives the lab
 * process that booted it: on linux.uml itself, and (by wrapping clone()) on
 * every helper and address-space process it creates, so that they die with it.
 *
 * Built on demand by lab/uml.py (cc -shared -fPIC); never used by the guest.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);
typedef int (*clone_fn)(int (*)(void *), void *, int, void *, ...);

static ptrace_fn real_ptrace;
static clone_fn real_clone;
static int lab_pdeathsig;
static size_t host_size;

struct shadow {
	const void *key;
	unsigned char *buf;
	struct shadow *next;
};

#define NBUCKETS 4096
static struct shadow *buckets[NBUCKETS];

/* LVS_LAB_PDEATHSIG=<pid of the lab process that started us> */
__attribute__((constructor)) static void lab_shim_init(void)
{
	const char *want = getenv("LVS_LAB_PDEATHSIG");

	if (want == NULL)
		return;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != (pid_t)strtol(want, NULL, 10))
		_exit(137);
	lab_pdeathsig = 1;
}

struct lab_tramp {
	int (*fn)(void *);
	void *arg;
};

static int lab_tramp_run(void *p)
{
	struct lab_tramp t = *(struct lab_tramp *)p;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	return t.fn(t.arg);
}

/* UML starts its helpers and one host process per guest address space with clone(). */
int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;
	pid_t *ptid;
	void *tls;
	pid_t *ctid;
	struct lab_tramp *t;
	int pid;

	va_start(ap, arg);
	ptid = va_arg(ap, pid_t *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, pid_t *);
	va_end(ap);
	if (real_clone == NULL)
		real_clone = (clone_fn)dlsym(RTLD_NEXT, "clone");
	if (!lab_pdeathsig || (flags & CLONE_THREAD))
		return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	t = malloc(sizeof(*t));
	if (t == NULL)
		return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	t->fn = fn;
	t->arg = arg;
	pid = real_clone(lab_tramp_run, stack, flags, t, ptid, tls, ctid);
	if (!(flags & CLONE_VM))
		free(t);  /* the child has its own copy */
	return pid;
}

static unsigned char *shadow_for(const void *key)
{
	uintptr_t h = ((uintptr_t)key >> 4) % NBUCKETS;
	struct shadow *s;

	for (s = buckets[h]; s; s = s->next)
		if (s->key == key)
			return s->buf;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->buf = calloc(1, host_size);
	if (s->buf == NULL) {
		free(s);
		return NULL;
	}
	s->key = key;
	s->next = buckets[h];
	buckets[h] = s;
	return s->buf;
}

long ptrace(enum __ptrace_request req, ...)
{
	va_list ap;
	pid_t pid;
	void *addr;
	void *data;

	va_start(ap, req);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);

	if (real_ptrace == NULL)
		real_ptrace = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

	if ((req == PTRACE_GETREGSET || req == PTRACE_SETREGSET) && (uintptr_t)addr == NT_X86_XSTATE && data != NULL) {
		struct iovec *iov = data;

		if (host_size == 0) {
			static unsigned char probe[1 << 16];
			struct iovec p = { probe, sizeof(probe) };

			if (real_ptrace(PTRACE_GETREGSET, pid, addr, &p) == 0)
				host_size = p.iov_len;
		}
		if (host_size != 0 && iov->iov_len < host_size) {
			unsigned char *sh = shadow_for(iov->iov_base);
			struct iovec big;
			long r;

			if (sh == NULL) {
				errno = ENOMEM;
				return -1;
			}
			big.iov_base = sh;
			big.iov_len = host_size;
			if (req == PTRACE_GETREGSET) {
				r = real_ptrace(req, pid, addr, &big);
				if (r == 0)
					memcpy(iov->iov_base, sh, iov->iov_len);
				return r;
			}
			memcpy(sh, iov->iov_base, iov->iov_len);
			return real_ptrace(req, pid, addr, &big);
		}
	}
	return real_ptrace(req, pid, addr, data);
}
