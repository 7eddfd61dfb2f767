#!/usr/bin/env python3
"""A minimal seccomp agent for tests: accept the runtime's connections on argv[1] (one per
process with a filter: the container's init, then one per exec), record the process state each
sends (the first to argv[2], the k-th to argv[2] + '.k'), then answer every notification on every
received listener fd with a fake success (return 0, do nothing) and append the syscall numbers to
argv[2] + '.calls'. Exits once every listener is closed (after the first one came), or after 30 s."""
import fcntl, json, select, socket, struct, sys, time

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(8)
open(out + '.ready', 'w').close()
SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes
poller = select.poll()
poller.register(srv.fileno(), select.POLLIN)
listeners = set()
received = 0
deadline = time.time() + 30
while time.time() < deadline:
    if received > 0 and not listeners:
        break
    for fd, ev in poller.poll(1000):
        if fd == srv.fileno():
            conn, _ = srv.accept()
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            conn.close()
            received += 1
            with open(out if received == 1 else f'{out}.{received}', 'w') as f:
                json.dump({'state': json.loads(msg), 'fds': len(fds)}, f)
            for nfd in fds:
                listeners.add(nfd)
                poller.register(nfd, select.POLLIN)
            continue
        if ev & select.POLLHUP:
            poller.unregister(fd)
            listeners.discard(fd)
            continue
        buf = bytearray(80)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
        except OSError:
            continue
        nid, pid, flags, nr = struct.unpack_from('<QIIi', buf, 0)
        with open(out + '.calls', 'a') as f:
            f.write(f'{nr}\n')
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack('<QqiI', nid, 0, 0, 0)), True)
        except OSError:
            pass
