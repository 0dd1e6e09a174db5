#!/bin/sh
# PID 1 of a lab *machine* (one UML guest per host, systemd as PID 1; lab/machines.py).
#
#     linux.uml ... ubd0=<disk.img> root=/dev/root rootfstype=hostfs rootflags=/ ro \
#         init=<share>/.machine-init.sh LAB_SHARE_HOST=<host dir of this machine>
#
# Stage 1 runs on the read-only hostfs view of the host's /.  It mounts the machine's disk
# (ubd0, ext4, persistent across reboots) and builds the root: an overlay whose lower layer
# is that read-only view and whose upper layer is the disk, so /etc and everything the
# machine writes stay on its disk and never reach the host.  It mounts the machine's share
# (the only read-write host directory) on /lab/share and the UML modules on
# /lib/modules/$(uname -r), where modprobe finds them on demand as on any host: nothing is
# loaded here.  On the disk's first boot it installs the machine (see first_boot).  Then
# pivot_root, and stage 2 detaches the host view and execs /lib/systemd/systemd.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
share=/lab/share

die() {
    echo "machine-init: $*" >/dev/console
    poweroff -f >/dev/null 2>&1
    echo o >/proc/sysrq-trigger
    sleep 30
    exit 1
}

# First boot of a disk: what installing this host would do.  Files come from the machine's
# seed directory (host names, network unit, ssh keys, the lab application, pyroute2); units
# that do not belong on a lab host are masked, units the image enables but a role must
# manage (keepalived) are disabled, and the container marker is removed so that
# systemd-detect-virt says "uml".
first_boot() {
    root=$1
    cp -a "$root$share/seed/." "$root/" || die "cannot install the seed files"
    rm -f "$root/.dockerenv" "$root"/etc/ssh/ssh_host_rsa_key* "$root"/etc/ssh/ssh_host_ecdsa_key*
    for unit in getty@tty1.service getty.target serial-getty@.service console-getty.service \
        systemd-timesyncd.service systemd-pstore.service e2scrub_reap.service postgresql.service \
        uml-utilities.service apt-daily.timer apt-daily-upgrade.timer man-db.timer fstrim.timer \
        e2scrub_all.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer; do
        ln -sfn /dev/null "$root/etc/systemd/system/$unit"
    done
    rm -f "$root"/etc/systemd/system/*.wants/keepalived.service
    date -u +%s >"$root/etc/lab-machine-installed"
    sync
}

if [ "${1:-}" != "--stage2" ]; then
    [ -n "${LAB_SHARE_HOST:-}" ] || die "LAB_SHARE_HOST is not set"
    mount -t proc -o nosuid,nodev,noexec proc /proc || die "cannot mount /proc"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || die "cannot mount a tmpfs on /run"
    kver=$(uname -r)
    moddir=/usr/lib/uml/modules/$kver
    insmod "$moddir/kernel/fs/overlayfs/overlay.ko" || die "cannot load overlay.ko from $moddir"
    disk=/run/lab/disk
    new=/run/lab/root
    mkdir -p "$disk" "$new"
    mount -t ext4 /dev/ubda "$disk" || die "cannot mount the machine's disk (ubd0)"
    mkdir -p "$disk/upper" "$disk/work"
    mount -t overlay -o lowerdir=/,upperdir=$disk/upper,workdir=$disk/work overlay "$new" \
        || die "cannot mount the overlay root"
    mkdir -p "$new$share" "$new/lib/modules/$kver" "$new/lab/disk"
    mount -t hostfs -o "$LAB_SHARE_HOST" none "$new$share" || die "cannot mount $LAB_SHARE_HOST on $share"
    mount --bind "$new$moddir" "$new/lib/modules/$kver" || die "cannot bind $moddir"
    # The disk stays visible read-only: the snapshot lists what the machine wrote to it.
    mount --bind "$disk" "$new/lab/disk" && mount -o remount,bind,ro "$new/lab/disk"
    [ -e "$new/etc/lab-machine-installed" ] || first_boot "$new"
    echo "boot $(cut -d' ' -f1 /proc/uptime)" >>"$new$share/boots.log"
    # /tmp: a fresh tmpfs, so that systemd-tmpfiles never walks the host's /tmp underneath.
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$new/tmp" || die "cannot mount /tmp"
    umount /proc
    mount --make-rprivate /
    mkdir -p "$new/lab/.oldroot"
    cd "$new" || die "cannot cd to the new root"
    pivot_root . lab/.oldroot || die "pivot_root failed"
    # shellcheck disable=SC2093  # if exec fails, die below reports it
    exec chroot . /bin/sh "$share/.machine-init.sh" --stage2
    die "cannot start stage 2"
fi

mount -t proc proc /proc 2>/dev/null
umount -l /lab/.oldroot && rmdir /lab/.oldroot
umount /proc
exec /lib/systemd/systemd --log-target=console --show-status=false
