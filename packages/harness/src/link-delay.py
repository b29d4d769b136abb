#!/usr/bin/env python3
"""Adds a fixed one-way delay to every packet the kernel hands to a TUN device.

Used by link.ts (--link delay=...): this kernel has no netem and no fq qdisc, so a tc u32 filter on
`lo` redirects the peers' UDP packets (mirred) to the TUN device DEV; this process reads each packet,
holds it for DELAY_MS and writes it back, where the kernel receives it as if it arrived on DEV and
delivers it locally. Packets keep their order (one constant delay: a FIFO, no heap).

Usage: link-delay.py DEV DELAY_MS. Prints "ready" once attached. Exits on SIGTERM, or when its
parent process goes away (checked every 0.5 s), so a killed harness leaves nothing behind.
"""
import collections
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536
PARENT_CHECK_S = 0.5


def main() -> None:
    dev, delay_ms = sys.argv[1], float(sys.argv[2])
    delay = delay_ms / 1000.0
    parent = os.getppid()
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', dev.encode(), IFF_TUN | IFF_NO_PI))
    print('ready', flush=True)
    queue = collections.deque()  # (due monotonic seconds, packet bytes), due ascending
    next_check = time.monotonic() + PARENT_CHECK_S
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            try:
                os.write(fd, queue.popleft()[1])
            except OSError:
                pass  # e.g. a packet the stack refuses: dropped, as a link would
        if now >= next_check:
            if os.getppid() != parent:
                return
            next_check = now + PARENT_CHECK_S
        wait = next_check - now
        if queue:
            wait = min(wait, max(0.0, queue[0][0] - now))
        readable, _, _ = select.select([fd], [], [], wait)
        if readable:
            arrived = time.monotonic() + delay
            while True:
                try:
                    queue.append((arrived, os.read(fd, MAX_PACKET)))
                except BlockingIOError:
                    break


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass
