#!/usr/bin/env bash
# Exit 0 when /dev/kvm exists and can create a VM (KVM_CREATE_VM = _IO(0xAE, 1)).
exec python3 - <<'PY'
import fcntl, os, sys
try:
    fd = os.open("/dev/kvm", os.O_RDWR)
    vm = fcntl.ioctl(fd, 0xAE01, 0)
    os.close(vm)
except OSError:
    sys.exit(1)
PY
