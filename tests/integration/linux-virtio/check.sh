#!/bin/sh
# Runs inside the test host (L1), shipped by run.sh: boots the linux-virtio guest under ember
# with a drive, a network interface on a TAP in a network namespace, vsock and an entropy
# device, 2 vCPUs, and checks from the host side what the guest did.
#   check.sh WORK EMBER MODE...     MODE: config (--config-file, ELF vmlinux) or
#                                         api (the API socket, bzImage, pause and resume)
# WORK holds what run.sh built: vmlinux, bzImage, initrd.cpio, disk.ext4, token, lv-vsock,
# lv-api. Prints "LV-RESULT <mode> ok|FAILED wall=<s>" per mode; exits 1 if any failed.
# LV_IP: iproute2's ip (busybox sh would run its own "ip" applet, which has no netns or tuntap).
set -u
work=$1 ember=$2
shift 2
ip=${LV_IP:-/usr/sbin/ip}
ns=ember-lv
token=$(cat "$work/token")
# pci=off as Firecracker's docs boot: ember has no PCI.
args="console=ttyS0 reboot=k panic=1 quiet pci=off i8042.noaux i8042.nomux i8042.dumbkbd"
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# The TAP lives in its own namespace, as tests/support/netns sets it up, and ember runs there.
"$ip" netns add $ns && "$ip" -n $ns link set lo up && "$ip" -n $ns tuntap add dev tap0 mode tap &&
  "$ip" -n $ns addr add 172.16.0.1/24 dev tap0 && "$ip" -n $ns link set tap0 up ||
  { echo "LV-RESULT setup FAILED: network namespace and TAP"; exit 1; }

# wait_log FILE PATTERN SECONDS: until FILE has a line matching PATTERN.
wait_log() {
  i=0
  until grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt $(($3 * 10)) ] && return 1
    sleep 0.1
  done
}

vm_json() { # KERNEL DIR
  cat <<JSON
{"boot-source": {"kernel_image_path": "$1", "initrd_path": "$work/initrd.cpio", "boot_args": "$args"},
 "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
 "drives": [{"drive_id": "data", "path_on_host": "$2/disk.ext4", "is_root_device": false, "is_read_only": false}],
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}],
 "vsock": {"guest_cid": 3, "uds_path": "$2/v.sock"},
 "entropy": {}}
JSON
}

# api DIR METHOD PATH [BODY]: one request; its reply goes to DIR/api.log.
api() {
  d=$1
  shift
  echo "> $*" >>"$d/api.log"
  "$work/lv-api" "$d/api.sock" "$@" >>"$d/api.log" 2>&1
}

# Configures and starts the VM over the API, then pauses and resumes it while it ticks: paused,
# the guest's console must stay silent; resumed, it must go on.
drive_api() { # DIR KERNEL
  d=$1
  "$work/lv-api" "$d/api.sock" wait || return 1
  api "$d" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}' &&
    api "$d" PUT /boot-source "{\"kernel_image_path\": \"$2\", \"initrd_path\": \"$work/initrd.cpio\", \"boot_args\": \"$args\"}" &&
    api "$d" PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$d/disk.ext4\", \"is_root_device\": false, \"is_read_only\": false}" &&
    api "$d" PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}' &&
    api "$d" PUT /vsock "{\"guest_cid\": 3, \"uds_path\": \"$d/v.sock\"}" &&
    api "$d" PUT /entropy '{}' &&
    api "$d" PUT /actions '{"action_type": "InstanceStart"}' || { echo "LV-API: configuration failed"; return 1; }
  wait_log "$d/ember.log" "LV-TICK" 90 || { echo "LV-API: the guest never ticked"; return 1; }
  api "$d" PATCH /vm '{"state": "Paused"}' && api "$d" GET / || return 1
  grep -q '"state": *"Paused"' "$d/api.log" || { echo "LV-API: GET / does not say Paused"; return 1; }
  before=$(wc -c <"$d/ember.log")
  sleep 1  # an observation window: nothing may appear on the console while paused
  after=$(wc -c <"$d/ember.log")
  [ "$before" = "$after" ] || { echo "LV-API: the console grew while paused ($before -> $after)"; return 1; }
  echo "LV-API-PAUSED: console held at $before bytes for 1 s"
  api "$d" PATCH /vm '{"state": "Resumed"}' || return 1
  i=0
  while [ "$(wc -c <"$d/ember.log")" = "$after" ]; do
    i=$((i + 1))
    [ $i -gt 300 ] && { echo "LV-API: the console stayed silent after Resumed"; return 1; }
    sleep 0.1
  done
  echo "LV-API-RESUMED: the console went on"
}

run_mode() { # MODE KERNEL
  mode=$1
  d=$work/run-$mode
  rm -rf "$d" && mkdir -p "$d" && cp "$work/disk.ext4" "$d/disk.ext4"
  t0=$(uptime_s)
  "$work/lv-vsock" host-listen "$d/v.sock_6000" "$d/vsock-from-guest.txt" >"$d/host-listen.log" 2>&1 &
  listener=$!
  if [ "$mode" = api ]; then
    "$ip" netns exec $ns timeout 150 "$ember" --api-sock "$d/api.sock" >"$d/ember.log" 2>&1 &
    vmm=$!
    drive_api "$d" "$2" || echo "LV-FAIL: api"
  else
    vm_json "$2" "$d" >"$d/vm.json"
    "$ip" netns exec $ns timeout 150 "$ember" --no-api --config-file "$d/vm.json" >"$d/ember.log" 2>&1 &
    vmm=$!
  fi
  "$work/lv-vsock" host-connect "$d/v.sock" 5000 PING-FROM-HOST >"$d/host-connect.log" 2>&1 ||
    echo "LV-FAIL: host-connect"
  wait $vmm
  rc=$?
  t1=$(uptime_s)
  kill $listener 2>/dev/null
  wait $listener 2>/dev/null
  tr -d '\r' <"$d/ember.log" >"$d/console.log"  # the guest's serial lines end in \r\n
  echo "== linux-virtio ($mode): ember exit $rc"
  [ -f "$d/api.log" ] && grep -E '^(> |[0-9]{3} )' "$d/api.log" | grep -v '^> GET' | sed 's/^/   api: /'
  grep -E "^LV-" "$d/console.log" | grep -v "^LV-TICK"
  cat "$d/host-connect.log"
  echo "LV-HOST-VSOCK-FROM-GUEST: $(cat "$d/vsock-from-guest.txt" 2>/dev/null)"
  echo "LV-HOST-BLK: $(debugfs -R 'cat /from-guest.txt' "$d/disk.ext4" 2>/dev/null)"
  e2fsck -fn "$d/disk.ext4" >"$d/fsck.log" 2>&1 && echo "LV-HOST-FSCK: clean" || echo "LV-FAIL: e2fsck"

  # Every expectation, from the guest's console and from the host's own view.
  ok=1
  expect() { grep -q "$2" "$1" || { echo "LV-MISSING ($mode): $2"; ok=0; }; }
  expect "$d/console.log" "^LV-INIT: nproc=2 "
  expect "$d/console.log" "^LV-VIRTIO-DEVICES: 0x0002 0x0001 0x0013 0x0004 "
  expect "$d/console.log" "^LV-BLK-READ: $token\$"
  expect "$d/console.log" "^LV-BLK-WRITE: ok"
  expect "$d/console.log" "^LV-NET-PING: 1 packets received"
  expect "$d/console.log" "^LV-RNG: virtio_rng.0 [0-9a-f]\{32\}\$"
  expect "$d/console.log" "^LV-VSOCK-IN: PING-FROM-HOST\$"
  expect "$d/console.log" "^LV-VSOCK-OUT: ACK HELLO-FROM-GUEST\$"
  expect "$d/console.log" "^LV-DONE "
  expect "$d/host-connect.log" "^LV-HOST-VSOCK-REPLY: PONG PING-FROM-HOST\$"
  expect "$d/vsock-from-guest.txt" "^HELLO-FROM-GUEST\$"
  [ "$mode" = api ] && expect "$d/api.log" '"state": *"Paused"'
  debugfs -R 'cat /from-guest.txt' "$d/disk.ext4" 2>/dev/null | grep -q "^written by the guest" ||
    { echo "LV-MISSING ($mode): from-guest.txt on the disk"; ok=0; }
  grep -q "^LV-FAIL" "$d/console.log" && ok=0
  [ $rc = 0 ] || ok=0
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  if [ $ok = 1 ]; then
    echo "LV-RESULT $mode ok wall=${wall}s"
    return 0
  fi
  echo "LV-RESULT $mode FAILED wall=${wall}s; the end of ember's output:"
  tail -n 40 "$d/console.log"
  return 1
}

# One retry per mode, as linux-in-testhost.sh does: the emulated test host occasionally stalls a
# boot. A failed attempt is printed in full above the retry, so a real fault still shows.
failed=0
for mode in "$@"; do
  case $mode in
    config) kernel=$work/vmlinux ;;
    api) kernel=$work/bzImage ;;
    *) echo "unknown mode $mode"; failed=1; continue ;;
  esac
  run_mode $mode "$kernel" || { echo "LV-RETRY $mode"; run_mode $mode "$kernel"; } || failed=1
done
exit $failed
