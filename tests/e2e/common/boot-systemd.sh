# Boots a real systemd as pid 1 of new namespaces, on overlays of the host's /usr, /etc
# and /var (upper directories under $1, kept across boots: a second boot on the same
# directory is a reboot). Run as: unshare -m -p -f -n -u -i -C --propagation private
# bash boot-systemd.sh DIR INSTANCECTL_BIN_DIR [PRISTINE_ETC_POSTFIX]
# from a shell already moved into cgroups of its own (see tests/e2e/common/systemd.rs).
# On a first boot, PRISTINE_ETC_POSTFIX replaces /etc/postfix (the package's own
# configuration, whatever the host's has been through) and DIR/first-boot.sh, if
# present, runs chrooted in the new root before systemd starts.
set -eu
dir=$1
bin=$2
pristine=${3:-}
new=$dir/root
mkdir -p "$new"
mount -t tmpfs -o mode=755 tmpfs "$new"
for d in usr etc var; do
    mkdir -p "$dir/$d/upper" "$dir/$d/work" "$new/$d"
    mount -t overlay overlay \
        -o "lowerdir=/$d,upperdir=$dir/$d/upper,workdir=$dir/$d/work" "$new/$d"
done
for l in bin sbin lib lib64; do ln -s "usr/$l" "$new/$l"; done
mkdir -p "$new/proc" "$new/sys" "$new/dev" "$new/run" "$new/tmp" "$new/root" "$new/opt/instancectl"
# instancectl and the test tools, read-only from the build directory.
mount --bind "$bin" "$new/opt/instancectl"
mount -o remount,bind,ro "$new/opt/instancectl"

mount -t proc proc "$new/proc"
mount --bind "$new/proc/sys" "$new/proc/sys"
mount -o remount,bind,ro "$new/proc/sys"
mount -t sysfs -o ro sysfs "$new/sys"
mount -t tmpfs -o mode=755 tmpfs "$new/sys/fs/cgroup"
mkdir "$new/sys/fs/cgroup/systemd" "$new/sys/fs/cgroup/unified"
mount -t cgroup -o none,name=systemd cgroup "$new/sys/fs/cgroup/systemd"
mount -t cgroup2 cgroup2 "$new/sys/fs/cgroup/unified"

mount -t tmpfs -o mode=755 tmpfs "$new/dev"
for n in null zero full random urandom tty; do
    touch "$new/dev/$n"
    mount --bind "/dev/$n" "$new/dev/$n"
done
mkdir "$new/dev/pts" "$new/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$new/dev/pts"
ln -s pts/ptmx "$new/dev/ptmx"
# systemd's console (boot status lines) lands in DIR/console.log; its log goes to the journal.
touch "$dir/console.log" "$new/dev/console"
mount --bind "$dir/console.log" "$new/dev/console"
ln -s /proc/self/fd "$new/dev/fd"
mount -t tmpfs tmpfs "$new/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$new/run"
mount -t tmpfs -o mode=1777 tmpfs "$new/tmp"

# Units that have no business in this throwaway machine.
etc=$new/etc/systemd/system
for unit in getty@tty1.service console-getty.service postgresql.service \
    e2scrub_reap.service systemd-timesyncd.service systemd-pstore.service \
    apt-daily.timer apt-daily-upgrade.timer man-db.timer fstrim.timer e2scrub_all.timer \
    dpkg-db-backup.timer systemd-tmpfiles-clean.timer remote-fs.target \
    systemd-networkd.service systemd-resolved.service cron.service ssh.service \
    systemd-logind.service; do  # logind: poweroff starts poweroff.target itself
    ln -sfn /dev/null "$etc/$unit"
done
echo systemd-test > "$new/etc/hostname"
if [ -n "$pristine" ]; then
    rm -rf "$new/etc/postfix"
    cp -a "$pristine" "$new/etc/postfix"
fi
if [ -f "$dir/first-boot.sh" ]; then
    cp "$dir/first-boot.sh" "$new/run/first-boot.sh"
    chroot "$new" bash /run/first-boot.sh
    rm -f "$new/run/first-boot.sh" "$dir/first-boot.sh"
fi

cd "$new"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
export container=unshare
exec /usr/lib/systemd/systemd --system --show-status=yes </dev/null
