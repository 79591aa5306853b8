"""A small seccomp filter for the bubblewrap sandbox, as raw classic BPF (no libseccomp needed).

It answers EPERM to the system calls a metric has no use for and an attacker does: sockets,
new processes (fork, vfork, and clone without CLONE_THREAD; threads still work), ptrace and
cross-process memory, namespaces and mounts, kernel keyrings, BPF, perf, userfaultfd, io_uring,
module loading, pidfd signalling and fd theft. `clone3` answers ENOSYS so the C library falls back
to `clone`, whose flags the filter can read. Any other architecture than the one the filter was
built for is killed, so a 32-bit or x32 syscall entry cannot sidestep it.
"""

from __future__ import annotations

import platform
import struct

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_NR, _ARCH, _ARG0_LOW = 0, 4, 16
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000
_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38
CLONE_THREAD = 0x00010000
X32_BIT = 0x40000000

_DENIED = ("socket", "socketpair", "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2",
           "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
           "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
           "swapon", "swapoff", "acct", "iopl", "ioperm", "io_uring_setup", "io_uring_enter", "io_uring_register",
           "open_by_handle_at", "name_to_handle_at", "fork", "vfork", "pidfd_open", "pidfd_send_signal",
           "pidfd_getfd", "move_mount", "open_tree", "fsopen", "fsmount", "fspick", "memfd_secret")

# Syscall numbers per architecture (from the kernel's syscall tables).
_TABLES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "socket": 41, "socketpair": 53, "clone": 56, "fork": 57, "vfork": 58, "ptrace": 101, "chroot": 161,
        "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
        "init_module": 175, "delete_module": 176, "acct": 163, "pivot_root": 155, "kexec_load": 246,
        "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308, "process_vm_readv": 310,
        "process_vm_writev": 311, "finit_module": 313, "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
        "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432, "fspick": 433, "pidfd_open": 434,
        "clone3": 435, "pidfd_getfd": 438, "memfd_secret": 447,
    }),
    "aarch64": (0xC00000B7, {
        "socket": 198, "socketpair": 199, "clone": 220, "ptrace": 117, "chroot": 51, "mount": 40, "umount2": 39,
        "swapon": 224, "swapoff": 225, "reboot": 142, "init_module": 105, "delete_module": 106, "acct": 89,
        "pivot_root": 41, "kexec_load": 104, "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97,
        "perf_event_open": 241, "name_to_handle_at": 264, "open_by_handle_at": 265, "setns": 268,
        "process_vm_readv": 270, "process_vm_writev": 271, "finit_module": 273, "kexec_file_load": 294,
        "bpf": 280, "userfaultfd": 282, "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsmount": 432,
        "fspick": 433, "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "memfd_secret": 447,
    }),
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where no table is known."""
    table = _TABLES.get(machine or platform.machine())
    if table is None:
        return None
    arch, numbers = table
    ops = [_op(_LD_ABS, _ARCH), _op(_JEQ, arch, 1, 0), _op(_RET, _KILL), _op(_LD_ABS, _NR)]
    if arch == _TABLES["x86_64"][0]:
        ops += [_op(_JGE, X32_BIT, 0, 1), _op(_RET, _ERRNO | EPERM)]
    for name in _DENIED:
        if name in numbers:
            ops += [_op(_JEQ, numbers[name], 0, 1), _op(_RET, _ERRNO | EPERM)]
    ops += [_op(_JEQ, numbers["clone3"], 0, 1), _op(_RET, _ERRNO | ENOSYS)]
    # clone: a thread (CLONE_THREAD set) is allowed, a new process is not.
    ops += [_op(_JEQ, numbers["clone"], 0, 3), _op(_LD_ABS, _ARG0_LOW), _op(_JSET, CLONE_THREAD, 1, 0),
            _op(_RET, _ERRNO | EPERM)]
    ops.append(_op(_RET, _ALLOW))
    return b"".join(ops)
