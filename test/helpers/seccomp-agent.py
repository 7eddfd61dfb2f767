#!/usr/bin/env python3
"""A minimal seccomp agent for tests: accept the runtime's connection on argv[1], record the
container process state it sends to argv[2], then answer every notification on the received
listener fd with a fake success (return 0, do nothing) and append the syscall numbers to
argv[2] + '.calls'. Exits when the container's processes are gone or after 30 s."""
import fcntl, json, select, socket, struct, sys, time

path, out = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
open(out + '.ready', 'w').close()
srv.settimeout(30)
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
with open(out, 'w') as f:
    json.dump({'state': json.loads(msg), 'fds': len(fds)}, f)
nfd = fds[0]
SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes
deadline = time.time() + 30
while time.time() < deadline:
    ready = select.poll()
    ready.register(nfd, select.POLLIN)
    events = ready.poll(1000)
    if not events:
        continue
    if events[0][1] & select.POLLHUP:
        break
    buf = bytearray(80)
    try:
        fcntl.ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
    except OSError:
        continue
    nid, pid, flags, nr = struct.unpack_from('<QIIi', buf, 0)
    with open(out + '.calls', 'a') as f:
        f.write(f'{nr}\n')
    try:
        fcntl.ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack('<QqiI', nid, 0, 0, 0)), True)
    except OSError:
        pass
