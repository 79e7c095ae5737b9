"""Shared by the test programs in this folder: the line protocol the tests read, address
parsing, and waiting for the test to let go (stdin closed) with a time limit.

Each program prints `<what> <CLOCK_MONOTONIC ns> [key=value...]` lines on stdout, flushed.

With PW_COMM set, a program renames its main thread to it (prctl PR_SET_NAME, as services do
with setproctitle): its `comm` is then no longer its executable's name.
"""
import ctypes
import os
import resource
import select
import socket
import sys
import time

if os.environ.get("PW_COMM"):
    PR_SET_NAME = 15
    ctypes.CDLL(None).prctl(PR_SET_NAME, os.environ["PW_COMM"].encode()[:15], 0, 0, 0)


def say(what, **kv):
    fields = " ".join(f"{k}={v}" for k, v in kv.items())
    print(f"{what} {time.monotonic_ns()} {fields}".rstrip(), flush=True)


def addr(text):
    """'127.0.0.1:80' or '[::1]:80' -> (family, (host, port))."""
    host, _, port = text.rpartition(":")
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


def wait_for_stdin_close(max_s):
    """Returns when stdin reaches EOF or after max_s seconds."""
    deadline = time.monotonic() + max_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        r, _, _ = select.select([sys.stdin], [], [], left)
        if r and not sys.stdin.buffer.read1(4096):
            return


def raise_nofile(n):
    """Lets the process hold n file descriptors (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(hard, n)))
