"""A client that opens COUNT non-blocking connections to DST and never waits for them: toward
a server that does not answer they stay in SYN_SENT. Says `reached kept=N` (or `fail
errno=NAME kept=N` when connect() fails), then holds them until stdin closes or MAX_S.

usage: nb_hold.py DST COUNT [MAX_S]
"""
import errno
import socket
import sys

from common import addr, say, wait_for_stdin_close

family, dst = addr(sys.argv[1])
count = int(sys.argv[2])
max_s = float(sys.argv[3]) if len(sys.argv) > 3 else 60
kept = []
for _ in range(count):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setblocking(False)
    e = s.connect_ex(dst)
    if e not in (0, errno.EINPROGRESS):
        say("fail", errno=errno.errorcode.get(e, e), kept=len(kept))
        s.close()
        break
    kept.append(s)
say("reached", kept=len(kept))
wait_for_stdin_close(max_s)
