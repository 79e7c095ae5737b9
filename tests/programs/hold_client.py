"""A load generator that wants WANT concurrent connections to DST and holds every one it
gets (ESTABLISHED) for HOLD_S seconds; connects that fail (EADDRNOTAVAIL once the pool is
out) are counted, not retried. Then it stops: every connection ends by RST (SO_LINGER 0, no
TIME_WAIT) and it exits. Says `fail errno=NAME made=N` (first failure of each errno),
`reached made=N failed=M`, then `stopped`.

usage: hold_client.py DST WANT HOLD_S
"""
import errno
import socket
import struct
import sys
import time

from common import addr, raise_nofile, say

family, dst = addr(sys.argv[1])
want = int(sys.argv[2])
hold_s = float(sys.argv[3])
raise_nofile(want + 64)
held, failed, said = [], 0, set()
for _ in range(want):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.connect(dst)
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        if name not in said:
            said.add(name)
            say("fail", errno=name, made=len(held))
        failed += 1
        s.close()
        continue
    held.append(s)
say("reached", made=len(held), failed=failed)
time.sleep(hold_s)
linger = struct.pack("ii", 1, 0)
for s in held:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    s.close()
say("stopped", made=len(held))
