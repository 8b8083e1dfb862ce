#!/usr/bin/env python3
"""tcp_proxy.py — a small TCP proxy for the cluster test's partitions.

    tcp_proxy.py LISTEN_PORT TARGET_PORT

Listens on 127.0.0.1:LISTEN_PORT and forwards every connection, byte for
byte, to 127.0.0.1:TARGET_PORT (TLS passes through untouched: the client
verifies the target's certificate for 127.0.0.1). Prints "listening" once
bound. Killing it (SIGKILL) drops every connection and refuses new ones;
SIGSTOP leaves them open and unanswered (a hung network); SIGCONT resumes.
"""
import asyncio
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


async def main(listen_port, target_port):
    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pipe(creader, swriter), pipe(sreader, cwriter))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tcp_proxy.py LISTEN_PORT TARGET_PORT")
    try:
        asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
    except KeyboardInterrupt:
        pass
