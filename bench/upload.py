"""Upload benchmark: the API's memory while an agent sends a 50 MB document.

Runs on a private stack (its own folder and ports) and removes it; 360dialog is
scripts/fake360.py in this process (it counts the uploaded bytes, keeps none).

    uv run python bench/upload.py [--megabytes 50]

The API (`python -m service api`, a child process) is warmed up with one small
upload; then one document of the given size is uploaded through
POST /api/conversations/{id}/attachments, streamed from a file on disk with its
Content-Length, and sent by the media id the fake returns. Printed: the API's
resident memory before the upload (VmRSS), its peak (VmHWM) after it, the
difference, and the upload's wall time. The target (issue 13) is a difference
of at most 30 MB: the body is forwarded chunk by chunk, never held whole. The
last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.fake360 import fake_360dialog
from tests.support.agent import make_tenant
from tests.support.processes import IsolatedStack, ServiceProcess, free_port_block

TARGET_MB = 30.0


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


async def send_file(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], path: Path, key: str
) -> float:
    started = time.perf_counter()
    with path.open("rb") as file:
        response = await client.post(
            url,
            files={"file": (path.name, file, "application/pdf")},
            headers={**headers, "Idempotency-Key": key},
            timeout=300,
        )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:300]}")
    return elapsed


async def measure(env: dict[str, str], fake_url: str, megabytes: int) -> dict[str, float]:
    tenant = make_tenant(env["DATABASE_URL"], env["SUPABASE_JWT_SECRET"], "Upload")
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(minutes=1))
    api = ServiceProcess(
        "api", {**env, "D360_BASE_URL": fake_url}, port=free_port_block(1, start=58600)
    )
    api.start()
    try:
        await api.wait_healthy()
        with tempfile.TemporaryDirectory() as folder:
            small = Path(folder) / "warm-up.pdf"
            small.write_bytes(b"%PDF-1.4\n" + b"0" * 1024 * 1024)
            big = Path(folder) / "document.pdf"
            with big.open("wb") as out:
                block = b"%PDF-1.4\n".ljust(1024 * 1024, b"0")
                for _ in range(megabytes):
                    out.write(block)
            url = f"{api.url}/api/conversations/{conversation}/attachments"
            async with httpx.AsyncClient() as client:
                await send_file(client, url, tenant.headers, small, "warm-up")
                idle = rss_mb(api.pid, "VmRSS")
                seconds = await send_file(client, url, tenant.headers, big, "document")
            peak = rss_mb(api.pid, "VmHWM")
    finally:
        api.stop()
    return {"idle": idle, "peak": peak, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()

    stack = IsolatedStack("bench-upload")
    stack.up()
    try:
        # The fake serves from a thread of this process, outside the benchmark's event loop.
        with fake_360dialog(free_port_block(1, start=58700)) as fake_url:
            figures = asyncio.run(measure(stack.env, fake_url, args.megabytes))
    finally:
        stack.destroy()

    idle, peak, seconds = figures["idle"], figures["peak"], figures["seconds"]
    above = peak - idle
    print(
        f"upload of {args.megabytes} MB: API RSS idle {idle:.1f} MB, peak {peak:.1f} MB, "
        f"{above:+.1f} MB above idle (target <= {TARGET_MB:.0f}), {seconds:.2f} s"
    )
    print(
        json.dumps(
            {
                "megabytes": args.megabytes,
                "idle_rss_mb": round(idle, 1),
                "peak_rss_mb": round(peak, 1),
                "above_idle_mb": round(above, 1),
                "seconds": round(seconds, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
