"""Command line: ``python -m lab run|check|clean``."""
from __future__ import annotations

import argparse
import shutil
import sys
import time

from lab import uml


def _cmd_run(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("lab run: no command given (python -m lab run -- CMD ARGS...)", file=sys.stderr)
        return 2

    closed = False

    def stream(data: bytes) -> None:
        nonlocal closed
        if closed:
            return
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # e.g. piped into head: keep running, stop printing
            closed = True

    try:
        res = uml.run_in_guest(argv, cpu=args.cpu, timeout=args.timeout, mem=args.mem, keep=args.keep,
                               share_dir=args.share, on_output=stream, slot_timeout=args.wait)
    except uml.LabError as exc:
        print(exc, file=sys.stderr)
        return 125
    if res.timed_out or res.crashed:
        print(f"{res.error()}\n--- guest console (tail) ---\n{res.console_tail()}\n---", file=sys.stderr)
    if args.verbose or res.timed_out or res.crashed:
        print(f"lab: rc={res.rc} cpu={res.cpu} kernel={res.kernel or '?'} boot {res.boot_s:.2f} s, "
              f"job {res.job_s:.2f} s, total {res.total_s:.2f} s" + (f", results in {res.share_dir}" if args.keep or args.share else ""),
              file=sys.stderr)
    return res.rc


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        found = uml.find_uml()
        shim = uml.build_shim()
    except uml.LabError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"uml: {found.binary} (modules {found.modules})")
    print(f"xstate shim: {shim or 'not needed'}")
    print(f"cpus: {uml.host_cpus()}")
    t0 = time.monotonic()
    res = uml.run_in_guest(["sh", "-c", "modprobe ip_vs && test -e /proc/net/ip_vs && uname -r"], timeout=args.timeout)
    print(f"guest: rc={res.rc} kernel={res.output.strip() or res.error()} boot {res.boot_s:.2f} s, "
          f"total {time.monotonic() - t0:.2f} s")
    if not res.ok:
        print(res.console_tail(), file=sys.stderr)
    return 0 if res.ok else 1


def _cmd_clean(args: argparse.Namespace) -> int:
    from lab import machines  # pylint: disable=import-outside-toplevel

    removed = uml.prune_stale()
    for name in machines.prune_machines():
        print(f"removed what the dead keeper of lab machines {name} left")
    if args.all:
        for sub in (uml.RUNS_DIR, uml.STATE_DIR / "pytest"):
            if sub.is_dir():
                for d in sub.iterdir():
                    if d.is_dir() and not uml.owner_alive(d):
                        shutil.rmtree(d, ignore_errors=True)
                        removed.append(d)
    for d in removed:
        print(f"removed {d}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab", description="user-mode Linux lab for lvs.ipvs")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot a fresh guest and run a command in it")
    r.add_argument("--cpu", type=int, default=None, help="host CPU to pin the guest to (default: any free one)")
    r.add_argument("--timeout", type=float, default=uml.DEFAULT_TIMEOUT, help="kill the guest after SEC seconds")
    r.add_argument("--mem", default="1G", help="guest memory (default 1G)")
    r.add_argument("--wait", type=float, default=3600.0, metavar="SEC",
                   help="how long to wait for a free CPU when other guests run (default 3600)")
    r.add_argument("--keep", action="store_true", help="keep the results directory (.lab/runs/...)")
    r.add_argument("--share", default=None, help="host results directory to mount on /lab/share")
    r.add_argument("-v", "--verbose", action="store_true", help="print timings to stderr")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    r.set_defaults(func=_cmd_run)
    c = sub.add_parser("check", help="verify the prerequisites and boot one guest")
    c.add_argument("--timeout", type=float, default=60.0)
    c.set_defaults(func=_cmd_check)
    k = sub.add_parser("clean", help="remove leftovers of dead runs")
    k.add_argument("--all", action="store_true", help="also remove kept results directories of finished runs")
    k.set_defaults(func=_cmd_clean)
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
