#!/usr/bin/env python3
# Pins BPF objects on a bpffs the way an eBPF CNI does, with bpf(2) and without bpftool (used by
# test/integration/bpf.test.ts):
#   bpf-pin.py PATH...                      a small array map pinned at each path
#   bpf-pin.py --xdp-link DEV PATH          moves the XDP program attached to DEV (generic mode) to a
#                                           bpf_link pinned at PATH, as Cilium attaches XDP today
import json
import subprocess
import ctypes
import os
import platform
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_MAP_CREATE, BPF_OBJ_PIN, BPF_PROG_GET_FD_BY_ID, BPF_LINK_CREATE = 0, 6, 13, 28
BPF_MAP_TYPE_ARRAY, BPF_XDP, XDP_FLAGS_SKB_MODE = 2, 37, 2

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    r = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def pin(fd, path):
    # BPF_OBJ_PIN: pathname (u64 pointer), bpf_fd, file_flags.
    cpath = ctypes.create_string_buffer(path.encode())
    attr = (ctypes.c_ubyte * 128)()
    ctypes.memmove(attr, (ctypes.c_uint64 * 1)(ctypes.addressof(cpath)), 8)
    ctypes.memmove(ctypes.byref(attr, 8), (ctypes.c_uint32 * 2)(fd, 0), 8)
    bpf(BPF_OBJ_PIN, attr)


if sys.argv[1] == "--xdp-link":
    dev, path = sys.argv[2], sys.argv[3]
    link = json.loads(subprocess.check_output(["ip", "-j", "-d", "link", "show", "dev", dev]))[0]
    attr = (ctypes.c_ubyte * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 1)(link["xdp"]["prog"]["id"]), 4)
    prog_fd = bpf(BPF_PROG_GET_FD_BY_ID, attr)
    # The fd keeps the program while it is detached and attached again through a link.
    subprocess.check_call(["ip", "link", "set", "dev", dev, "xdpgeneric", "off"])
    # BPF_LINK_CREATE: prog_fd, target_ifindex, attach_type, flags.
    attr = (ctypes.c_ubyte * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 4)(prog_fd, link["ifindex"], BPF_XDP, XDP_FLAGS_SKB_MODE), 16)
    pin(bpf(BPF_LINK_CREATE, attr), path)
    sys.exit(0)

for path in sys.argv[1:]:
    # union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries, map_flags,
    # inner_map_fd, numa_node, then map_name[16].
    attr = (ctypes.c_ubyte * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 7)(BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, 0, 0), 28)
    name = os.path.basename(path).encode()[:15]
    ctypes.memmove(ctypes.byref(attr, 28), name, len(name))
    fd = bpf(BPF_MAP_CREATE, attr)
    pin(fd, path)
    os.close(fd)
