"""A supervisor's view: the region's cases and overdue lists, and no decrypted personal field."""

from __future__ import annotations

from datetime import datetime, timezone

from gateway.access.principal import Role
from tests.access.helpers import signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings, sample_query

SUMMARY_FIELDS = {"case_id", "kind", "residence_township", "registration_township", "received_at",
                  "reporting_month", "due_at", "state"}


async def test_a_supervisor_lists_the_region_s_cases_without_personal_fields():
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gw.start(relay=False)
    try:
        query = await gw.service.submit(RESIDENCE, sample_query())
        await gw.relay.run_once()
        assert await gw.tracker.store.get_case(query.message_id) is not None
        async with signed_in_client(gw, Role.SUPERVISOR, REGISTRATION[:2]) as supervisor:
            cases = (await supervisor.get(f"/regions/{REGISTRATION[:4]}/cases")).json()
            elsewhere = await supervisor.get(f"/regions/{RESIDENCE[:2]}/cases")
        gw.clock.set(datetime(2026, 3, 28, tzinfo=timezone.utc))  # past the deadline (and the session's idle time)
        async with signed_in_client(gw, Role.SUPERVISOR, REGISTRATION[:2]) as supervisor:
            overdue = await supervisor.get(f"/regions/{REGISTRATION[:2]}/overdue", params={"month": "2026-03"})
            missed = await supervisor.get(f"/regions/{REGISTRATION[:2]}/missed")
    finally:
        await gw.stop()
    assert [c["case_id"] for c in cases] == [query.message_id]
    assert set(cases[0]) == SUMMARY_FIELDS
    text = str(cases)
    person = sample_query()["person"]
    assert person["citizen_id"] not in text and person["name"] not in text
    assert overdue.status_code == 200 and [c["case_id"] for c in overdue.json()] == [query.message_id]
    assert missed.status_code == 200 and missed.json() == []
    assert elsewhere.status_code == 403
