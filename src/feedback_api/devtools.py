"""Development helpers that are not part of the service."""

from __future__ import annotations

import asyncio
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


async def run_receiver(secret: str, port: int) -> None:
    """Answer every POST with 204 after checking its signature; print what arrived."""
    verifier = Webhook(secret)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                headers: dict[str, str] = {}
                while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, value = raw.decode().split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                try:
                    payload = verifier.verify(body, headers)
                    status, verdict = 204, "verified"
                except WebhookVerificationError as exc:
                    payload, status, verdict = json.loads(body or b"null"), 401, f"REJECTED ({exc})"
                sys.stdout.write(
                    f"{verdict} {headers.get('webhook-id')} {json.dumps(payload)[:500]}\n"
                )
                sys.stdout.flush()
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    sys.stdout.write(f"receiving on http://127.0.0.1:{port}/\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()
