"""One fix to schemathesis' requests transport for this environment.

grafana-client depends on niquests, whose urllib3-future installs itself as ``urllib3``;
there ``PoolManager.pools`` is not a dict, and schemathesis' count of open connections
(used only to decide whether to resend once over a dropped keep-alive connection) raises
``AttributeError: 'TrafficPolice' object has no attribute 'keys'`` on every call. Counting
zero instead keeps every request and every check as they are.
"""

from __future__ import annotations

from typing import Any

import schemathesis.transport.requests as _transport

_count = _transport._count_opened_connections


def _count_or_zero(session: Any) -> int:
    try:
        return int(_count(session))
    except AttributeError:
        return 0


_transport._count_opened_connections = _count_or_zero
