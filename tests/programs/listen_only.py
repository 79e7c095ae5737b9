"""A server that listens on ADDR with a backlog of 0 and never accepts: once one connection
waits in its accept queue, the kernel drops every further SYN (an overloaded server). Says
`ready`, then keeps listening until stdin closes or MAX_S.

usage: listen_only.py ADDR [MAX_S]
"""
import socket
import sys

from common import addr, say, wait_for_stdin_close

family, local = addr(sys.argv[1])
max_s = float(sys.argv[2]) if len(sys.argv) > 2 else 60
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(local)
s.listen(0)
say("ready")
wait_for_stdin_close(max_s)
