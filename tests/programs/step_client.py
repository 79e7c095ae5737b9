"""A client that opens blocking connections to DST in steps, holding every one: each line
`step` on stdin opens STEP more (stopping at the first that fails) and says
`held n=N [port_min=… port_max=… odd=K]` for that step, or `fail errno=NAME n=N` once
connect() fails. Ends when stdin closes or after MAX_S.

usage: step_client.py DST STEP [MAX_S]
"""
import errno
import resource
import socket
import sys
import time

from common import addr, say

family, dst = addr(sys.argv[1])
step = int(sys.argv[2])
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 120
# Holding a thousand connections needs more than the default 1,024 descriptors.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))

held = []
failed = False
deadline = time.monotonic() + max_s
say("ready")
while time.monotonic() < deadline:
    line = sys.stdin.readline()
    if not line:
        break
    if failed:
        continue
    ports = []
    for _ in range(step):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.connect(dst)
        except OSError as e:
            s.close()
            say("fail", errno=errno.errorcode.get(e.errno, e.errno), n=len(held))
            failed = True
            break
        held.append(s)
        ports.append(s.getsockname()[1])
    if not failed:
        odd = sum(p & 1 for p in ports)
        say("held", n=len(held), port_min=min(ports), port_max=max(ports), odd=odd)
