#!/bin/sh
# PID 1 of a lab guest (Debian's user-mode Linux).  lab/uml.py copies this file
# into the run's results directory and boots
#     linux.uml ... root=/dev/root rootfstype=hostfs rootflags=/ ro init=<copy> \
#         LAB_SHARE_HOST=<host results dir> LAB_TIMEOUT=<seconds> LAB_REPO_HOST=<repository>
# The kernel hands unknown VAR=value arguments to init's environment (UML also
# leaks mem=... and uml_dir=... there).  Arguments whose name contains a dot
# are dropped as module parameters, which is why the job itself is a script in
# the results directory, not kernel arguments.
#
# Stage 1 runs on the read-only hostfs view of the host's /.  It builds a
# copy-on-write root (overlay: lower = that view, upper = tmpfs), gives it fresh
# /run /tmp /dev/shm and devpts, mounts the results directory (the only
# read-write host mount) on /lab/share and the UML modules on
# /lib/modules/$(uname -r), then pivot_root()s into it so that the host view is
# gone, also for the kernel's modprobe helper.
# Stage 2 brings lo up, replaces /etc/resolv.conf and /etc/hosts (no DNS in
# the lab), loads ipv6, runs /lab/share/.lab-job.sh with its output
# in /lab/share/output.log, records the exit code in /lab/share/.lab-rc and
# powers off.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
share=/lab/share

halt_now() {
    poweroff -f >/dev/null 2>&1
    echo o >/proc/sysrq-trigger
    sleep 30
    exit 1
}

die() {
    echo "lab-init: $*" >/dev/console
    halt_now
}

if [ "${1:-}" != "--stage2" ]; then
    [ -n "${LAB_SHARE_HOST:-}" ] || die "LAB_SHARE_HOST is not set"
    mount -t proc -o nosuid,nodev,noexec proc /proc || die "cannot mount /proc"
    mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || die "cannot mount /sys"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || die "cannot mount a tmpfs on /run"
    kver=$(uname -r)
    moddir=/usr/lib/uml/modules/$kver
    insmod "$moddir/kernel/fs/overlayfs/overlay.ko" || die "cannot load overlay.ko from $moddir"
    new=/run/lab/root
    mkdir -p /run/lab/upper /run/lab/work "$new"
    mount -t overlay -o lowerdir=/,upperdir=/run/lab/upper,workdir=/run/lab/work overlay "$new" \
        || die "cannot mount the overlay root"
    for d in proc sys dev; do
        mount --move "/$d" "$new/$d" || die "cannot move /$d"
    done
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$new/run" || die "cannot mount /run"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$new/tmp" || die "cannot mount /tmp"
    mkdir -p "$new/dev/shm" "$new/dev/pts" "$new$share" "$new/lib/modules/$kver"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$new/dev/shm" || die "cannot mount /dev/shm"
    mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts "$new/dev/pts" || die "cannot mount devpts"
    # What udev would add to devtmpfs (bash process substitution needs /dev/fd).
    ln -sfn /proc/self/fd "$new/dev/fd"
    ln -sfn /proc/self/fd/0 "$new/dev/stdin"
    ln -sfn /proc/self/fd/1 "$new/dev/stdout"
    ln -sfn /proc/self/fd/2 "$new/dev/stderr"
    mount -t hostfs -o "$LAB_SHARE_HOST" none "$new$share" || die "cannot mount $LAB_SHARE_HOST on $share"
    case "${LAB_REPO_HOST:-}" in
        /tmp/* | /run/* | /dev/shm/*)
            # The repository (a CI clone, say) lives where the guest gets a fresh tmpfs:
            # show it there copy-on-write, like the rest of the host root.
            mkdir -p /run/lab/repo-lower /run/lab/repo-upper /run/lab/repo-work "$new$LAB_REPO_HOST"
            mount -r -t hostfs -o "$LAB_REPO_HOST" none /run/lab/repo-lower || die "cannot mount $LAB_REPO_HOST"
            mount -t overlay -o lowerdir=/run/lab/repo-lower,upperdir=/run/lab/repo-upper,workdir=/run/lab/repo-work \
                overlay "$new$LAB_REPO_HOST" || die "cannot mount the overlay on $LAB_REPO_HOST"
            ;;
    esac
    mount --bind "$new$moddir" "$new/lib/modules/$kver" || die "cannot bind $moddir"
    mount --make-rprivate /
    mkdir -p "$new/run/.oldroot"
    cd "$new" || die "cannot cd to the new root"
    pivot_root . run/.oldroot || die "pivot_root failed"
    # shellcheck disable=SC2093  # if exec fails, die below reports it
    exec chroot . /bin/sh "$share/.lab-init.sh" --stage2
    die "cannot start stage 2"
fi

umount -l /run/.oldroot && rmdir /run/.oldroot
hostname lab
# The host's resolver settings would send DNS queries to an address outside the
# lab; the guest gets no DNS at all (lookups fail at once on 127.0.0.1) and a
# hosts file of its own.  Both writes land in the overlay's tmpfs.
rm -f /etc/resolv.conf /etc/hosts
printf '# lab guest: no DNS\noptions timeout:1 attempts:1\n' >/etc/resolv.conf
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tlab\n' >/etc/hosts
ip link set lo up
modprobe ipv6 || echo "lab-init: modprobe ipv6 failed" >/dev/console
cd / || die "no /"
echo "$(uname -r) $(cut -d' ' -f1 /proc/uptime)" >"$share/.lab-started" || die "cannot write to $share"
timeout -k 5 "${LAB_TIMEOUT:-900}" /bin/sh "$share/.lab-job.sh" <"/dev/null" >>"$share/output.log" 2>&1
echo "$?" >"$share/.lab-rc"
halt_now
