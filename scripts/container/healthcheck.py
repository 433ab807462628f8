"""The image's HEALTHCHECK: GET /healthz on the gateway port, standard library only.

Asks the address the gateway listens on (BIND_ADDRESS; loopback when it listens on every
address) at GATEWAY_PORT, never through a proxy. Exit 0 when it answers 200, else 1.
"""

from __future__ import annotations

import os
import sys
import urllib.request

host = os.environ.get("BIND_ADDRESS") or "0.0.0.0"
host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
if ":" in host:
    host = f"[{host}]"
url = f"http://{host}:{os.environ.get('GATEWAY_PORT') or '8080'}/healthz"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(url, timeout=2) as answer:
        status = answer.status
except Exception as err:  # any failure is "unhealthy"
    print(f"{url}: {err}")
    sys.exit(1)
print(f"{url}: {status}")
sys.exit(0 if status == 200 else 1)
