#!/usr/bin/env python3
"""tcp_proxy.py — a small proxy for the cluster test's partitions.

    tcp_proxy.py LISTEN TARGET

LISTEN and TARGET are each a TCP port on 127.0.0.1 (PORT) or a unix socket
(unix:PATH). Every connection to LISTEN is forwarded, byte for byte, to
TARGET (TLS passes through untouched: the client verifies the target's
certificate for 127.0.0.1). A unix socket joins two network namespaces: a
proxy in each, one listening on TCP and forwarding to the socket, the other
listening on it and forwarding to TCP. Prints "listening" once bound.
Killing it (SIGKILL) drops every connection and refuses new ones; SIGSTOP
leaves them open and unanswered (a hung network); SIGCONT resumes.
"""
import asyncio
import os
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def endpoint(text):
    """("unix", PATH) or ("tcp", PORT)."""
    if text.startswith("unix:"):
        return "unix", text[5:]
    return "tcp", int(text)


async def connect(target):
    kind, where = target
    if kind == "unix":
        return await asyncio.open_unix_connection(where)
    return await asyncio.open_connection("127.0.0.1", where)


async def main(listen, target):
    async def handle(creader, cwriter):
        try:
            sreader, swriter = await connect(target)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, swriter), pipe(sreader, cwriter))

    kind, where = listen
    if kind == "unix":
        if os.path.exists(where):
            os.unlink(where)
        server = await asyncio.start_unix_server(handle, where)
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", where, reuse_address=True)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tcp_proxy.py LISTEN TARGET (each PORT or unix:PATH)")
    try:
        asyncio.run(main(endpoint(sys.argv[1]), endpoint(sys.argv[2])))
    except KeyboardInterrupt:
        pass
