#!/usr/bin/env python3
# Pins a small BPF array map at each path given (on a bpffs), as an eBPF CNI pins its maps: the
# bpf(2) calls BPF_MAP_CREATE and BPF_OBJ_PIN, without bpftool. Used by test/integration/bpf.test.ts.
import ctypes
import os
import platform
import sys

SYS_BPF = {"x86_64": 321, "aarch64": 280}[platform.machine()]
BPF_MAP_CREATE, BPF_OBJ_PIN, BPF_MAP_TYPE_ARRAY = 0, 6, 2

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    r = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


for path in sys.argv[1:]:
    # union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries, map_flags,
    # inner_map_fd, numa_node, then map_name[16].
    attr = (ctypes.c_ubyte * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 7)(BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, 0, 0), 28)
    name = os.path.basename(path).encode()[:15]
    ctypes.memmove(ctypes.byref(attr, 28), name, len(name))
    fd = bpf(BPF_MAP_CREATE, attr)
    # BPF_OBJ_PIN: pathname (u64 pointer), bpf_fd, file_flags.
    cpath = ctypes.create_string_buffer(path.encode())
    pin = (ctypes.c_ubyte * 128)()
    ctypes.memmove(pin, (ctypes.c_uint64 * 1)(ctypes.addressof(cpath)), 8)
    ctypes.memmove(ctypes.byref(pin, 8), (ctypes.c_uint32 * 2)(fd, 0), 8)
    bpf(BPF_OBJ_PIN, pin)
    os.close(fd)
