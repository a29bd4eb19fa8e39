"""The accounts side of `/ws/`: the suspension policy before every message but `ping`.

A socket's user was read when it opened; `fresh=True` re-reads the status, so a message sent
after a suspension is refused (403 `account_suspended` as an error frame, then close 4403)
even if the suspension's `ws.close` never reached this process.
"""

from __future__ import annotations

from accounts.policies import ensure_active
from biddt.consumers import ws_account_guard


@ws_account_guard
def account_active(user) -> None:
    ensure_active(user, fresh=True)
