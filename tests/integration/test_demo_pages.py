"""`gateway demo` at any size: its clerks read their inboxes page by page (`?status=received`, then
the `Link: rel="next"` address), so an inbox longer than one response is answered in full."""

from __future__ import annotations

import pytest

from gateway import demo

pytestmark = [pytest.mark.broker]


async def test_the_demo_answers_every_query_when_each_inbox_takes_several_pages(amqp_url, monkeypatch):
    monkeypatch.delenv("GATEWAY_ALLOWED_HOSTS", raising=False)
    monkeypatch.setattr(demo, "INBOX_PAGE", 2)  # 9 queries over 3 townships: 3 per inbox, 2 pages each
    summary = await demo.run_demo(amqp_url=amqp_url, townships=3, messages=9)
    assert summary.ok, summary
    assert (summary.delivered, summary.feedback_sent, summary.answered) == (9, 9, 9)
