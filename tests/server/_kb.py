"""The grouped knowledge base the server tests share: documents, questions, users."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

DOCS = {
    "hr": {
        "parental-leave.md": "# Parental leave\n\nEmployees get 16 weeks of paid parental "
        "leave, taken within the first year after the birth or adoption of a child.",
        "salary-bands.md": "# Salary bands\n\nSalary bands are reviewed every March by the "
        "people team; a raise outside the band needs the finance director's approval.",
        "performance-reviews.md": "# Performance reviews\n\nPerformance reviews happen twice "
        "a year, in June and December, with a written self assessment before each one.",
        "remote-work.md": "# Remote work\n\nStaff may work remotely up to three days a week; "
        "managers approve a fully remote arrangement in writing.",
        "sick-days.md": "# Sick days\n\nSick days are unlimited; after three consecutive days "
        "a doctor's note is required by the people team.",
        "hiring.md": "# Hiring process\n\nEvery hire has two interviews and a work sample; "
        "references are checked before an offer letter is sent.",
    },
    "sales": {
        "refunds.md": "# Refund policy\n\nEnterprise customers get a full refund within 30 "
        "days of purchase; after that, unused months are credited.",
        "discounts.md": "# Enterprise discounts\n\nDeals above 100 seats get a 15 percent "
        "volume discount; larger discounts need the sales director's sign-off.",
        "pricing.md": "# Pricing tiers\n\nThe Team plan costs 12 dollars per seat a month and "
        "the Business plan 25 dollars per seat a month, billed yearly.",
        "renewals.md": "# Renewals\n\nRenewal quotes go out 60 days before the contract ends; "
        "a price increase is capped at 7 percent per year.",
        "trials.md": "# Free trials\n\nFree trials last 14 days and can be extended once by "
        "another 14 days when a sales engineer is assigned.",
        "commission.md": "# Sales commission\n\nAccount executives earn 10 percent commission "
        "on new annual contract value, paid the month after the invoice is settled.",
    },
    "hr,sales": {
        "holidays.md": "# Company holidays\n\nThe office closes on the first working day of "
        "the year and between Christmas and New Year.",
    },
}

QUESTIONS = {
    "hr": [
        "How many weeks of parental leave do employees get?",
        "When are salary bands reviewed?",
        "How often are performance reviews held?",
        "How many days a week can staff work remotely?",
        "When is a doctor's note needed for sick days?",
        "How many interviews does every hire have?",
    ],
    "sales": [
        "How long do enterprise customers have to ask for a refund?",
        "What volume discount do deals above 100 seats get?",
        "How much does the Business plan cost per seat?",
        "When do renewal quotes go out?",
        "How long do free trials last?",
        "What commission do account executives earn?",
    ],
}


@dataclass
class Keys:
    admin: str
    alice: str  # editor, sales
    bob: str  # viewer, hr
    carol: str  # viewer, hr and sales


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(app: Any) -> Iterator[str]:
    """A real uvicorn on 127.0.0.1 serving ``app`` in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("the test server did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def admin_workspace(path: Path) -> str:
    """A new workspace at ``path`` (on the store the environment names) with an admin user;
    returns the admin's API key."""
    from datawheel.workspace import Workspace

    with Workspace.init(path) as ws:
        return ws.add_user("root", role="admin", groups=["*"])
