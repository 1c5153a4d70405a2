"""A second nginx in front of the stack's gateway that refuses the API root, like hosted Supabase.

Hosted projects stopped answering `/rest/v1/` (the OpenAPI description) to
anonymous and publishable keys in 2026; everything else passes through to
the real gateway and the real PostgREST behind it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.processes import free_port_block


@contextmanager
def root_refusing_gateway(upstream_url: str, folder: Path) -> Iterator[str]:
    upstream = urlsplit(upstream_url)
    port = free_port_block(1, start=58700)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
daemon on;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /rest/v1/ {{
            default_type application/json;
            return 401 '{{"message":"access to the API root requires a secret key"}}';
        }}
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://{upstream.hostname}:{upstream.port};
        }}
    }}
}}
""")
    subprocess.run(["/usr/sbin/nginx", "-p", str(folder), "-c", str(conf)], check=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the test gateway did not start"
                time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        pid = int((folder / "nginx.pid").read_text())
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while (folder / "nginx.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
