#!/bin/sh
# /init of the linux-virtio guest (L2, busybox): loads the virtio-mmio and device modules of the
# stock Debian kernel (which finds the devices only through the ACPI DSDT), then exercises each
# device and prints LV-* markers on the serial console for check.sh: the block device (read the
# host's file, write one back), the network (ping the TAP address), the entropy device, and vsock
# in both directions. Ends with LV-DONE and a reboot through the i8042 (reboot=k), so ember exits.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
up() { cut -d' ' -f1 /proc/uptime; }
fail() { echo "LV-FAIL: $*"; }
# wait_for PATH: the devices appear asynchronously after insmod; 10 s at most.
wait_for() {
  i=0
  while [ ! -e "$1" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && return 1
    sleep 0.1
  done
}
echo "LV-INIT: nproc=$(nproc) uptime=$(up)"

while read -r m; do
  insmod "/lib/modules/$m.ko" || fail "insmod $m"
done </lib/modules/order
wait_for /dev/vda || fail "no /dev/vda"
wait_for /sys/class/net/eth0 || fail "no eth0"
ids=""
for d in /sys/bus/virtio/devices/*; do ids="$ids $(cat "$d/device")"; done
echo "LV-VIRTIO-DEVICES:$ids uptime=$(up)"

# Block: the host put from-host.txt on the ext4 image; check.sh reads from-guest.txt back.
mkdir -p /mnt
if mount -t ext4 /dev/vda /mnt; then
  echo "LV-BLK-READ: $(cat /mnt/from-host.txt)"
  echo "written by the guest at uptime $(up)" >/mnt/from-guest.txt && sync && echo "LV-BLK-WRITE: ok"
  umount /mnt || fail "umount"
else
  fail "mount /dev/vda"
fi

# Network: the TAP on the host side is 172.16.0.1/24.
ip addr add 172.16.0.2/24 dev eth0 && ip link set eth0 up
if ping -c 1 -w 20 172.16.0.1 >/tmp/ping.out 2>&1; then
  echo "LV-NET-PING: $(grep -o '[0-9]* packets received' /tmp/ping.out)"
else
  fail "ping: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
fi

# Entropy: the hwrng core picks the virtio device and hands out its bytes.
rng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
bytes=$(dd if=/dev/hwrng bs=16 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
if [ "${#bytes}" = 32 ]; then echo "LV-RNG: $rng $bytes"; else fail "hwrng ($rng) gave '$bytes'"; fi

# vsock: a listener for the host's CONNECT 5000, and a connection to the host's port 6000.
# Ticks show the host that the guest runs (linux-api pauses and resumes it meanwhile).
lv-vsock guest-listen 5000 &
listener=$!
(while kill -0 $listener 2>/dev/null; do echo "LV-TICK $(up)"; sleep 0.5; done) &
lv-vsock guest-connect 2 6000 HELLO-FROM-GUEST || fail "vsock connect to the host"
wait $listener || fail "vsock listener"

echo "LV-DONE uptime=$(up)"
reboot -f
