"""The alert lifecycle as security staff live it: one alert per incident, acknowledged or
escalated, silenced during maintenance, muted behind a broken network, resolved when the
condition clears — and who gets told what at each step."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ioc.alerts.lifecycle import AlertActionError, AlertBook
from ioc.alerts.model import Signal, fingerprint
from ioc.alerts.notices import plan_notifications
from ioc.alerts.routing import InhibitRule, Matcher, Route, Silence

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
KINDS = {"am": "alertmanager", "phone": "webhook", "ciso": "mail", "ops-mail": "mail"}

SECURITY = Route(
    name="security",
    matchers=(Matcher.parse('team="security"'),),
    receivers=("am", "phone"),
    group_by=("alertname",),
    escalate_after=timedelta(minutes=15),
    escalate_to=("ciso",),
)
OPERATIONS = Route(
    name="operations", matchers=(Matcher.parse('team="ops"'),), receivers=("am", "ops-mail")
)
NETWORK_MUTES_SITE = InhibitRule(
    source=(Matcher.parse('alertname="network-down"'),),
    target=(Matcher.parse('alertname="service-down"'),),
    equal=("site",),
)


def book(**kw: object) -> AlertBook:
    ids = (f"a{i}" for i in itertools.count(1))
    return AlertBook((SECURITY, OPERATIONS), (NETWORK_MUTES_SITE,), new_id=lambda: next(ids), **kw)  # type: ignore[arg-type]


def intrusion(src: str, at: datetime, eid: str, firing: bool = True) -> Signal:
    return Signal(
        rule="intrusion",
        group={"src_ip": src},
        firing=firing,
        at=at,
        severity="critical",
        summary=f"intrusion from {src}",
        labels={"team": "security"},
        evidence=(eid,),
        received_at=at + timedelta(milliseconds=5),
    )


def service_down(service: str, site: str, firing: bool = True) -> Signal:
    return Signal(
        rule="service-down",
        group={"service_id": service, "site": site},
        firing=firing,
        at=T0,
        severity="high",
        summary=f"{service} down",
        labels={"team": "ops"},
    )


def network_down(site: str, firing: bool = True) -> Signal:
    return Signal(
        rule="network-down",
        group={"site": site},
        firing=firing,
        at=T0,
        severity="critical",
        summary=f"network at {site} down",
        labels={"team": "ops"},
    )


def notify(b: AlertBook, changes: list, now: datetime = T0) -> list[tuple[str, str, int]]:
    ids = (f"n{i}" for i in itertools.count(1))
    out = plan_notifications(changes, b, KINDS, now, lambda: next(ids))
    return sorted((n.receiver, n.reason, len(n.alerts)) for n in out)


def test_fifty_related_events_make_one_alert_and_one_page() -> None:
    b = book()
    changes = []
    for i in range(50):
        changes += b.apply(intrusion("10.0.0.9", T0 + timedelta(seconds=i), f"e{i}"), T0)
    assert [c.kind for c in changes].count("fired") == 1
    assert len(b.alerts) == 1
    alert = b.alerts[fingerprint("intrusion", {"src_ip": "10.0.0.9"})]
    assert alert.event_count == 50
    assert alert.labels == {
        "team": "security",
        "src_ip": "10.0.0.9",
        "alertname": "intrusion",
        "severity": "critical",
    }
    assert notify(b, changes) == [("am", "firing", 1), ("phone", "firing", 1)]
    # the next cycle's evidence notifies nobody
    more = b.apply(intrusion("10.0.0.9", T0 + timedelta(minutes=1), "e99"), T0)
    assert [c.kind for c in more] == ["updated"]
    assert notify(b, more) == []


def test_alerts_of_one_route_group_go_out_as_one_message() -> None:
    b = book()
    changes = b.apply(intrusion("10.0.0.1", T0, "e1"), T0) + b.apply(
        intrusion("10.0.0.2", T0, "e2"), T0
    )
    assert len(b.alerts) == 2
    assert notify(b, changes) == [("am", "firing", 2), ("phone", "firing", 2)]


def test_a_late_event_moves_the_start_back_and_evidence_stays_bounded() -> None:
    b = book()
    b.apply(intrusion("10.0.0.9", T0, "e0"), T0)
    for i in range(1, 40):
        b.apply(intrusion("10.0.0.9", T0 + timedelta(seconds=i), f"e{i}"), T0)
    b.apply(intrusion("10.0.0.9", T0 - timedelta(minutes=3), "late"), T0)
    (alert,) = b.alerts.values()
    assert alert.starts_at == T0 - timedelta(minutes=3)
    assert alert.last_event_at == T0 + timedelta(seconds=39)
    assert len(alert.evidence) == 20
    assert alert.evidence[0] == "e0" and alert.evidence[-1] == "late"


def test_clearing_resolves_and_tells_exactly_who_was_told() -> None:
    b = book()
    notify(b, b.apply(intrusion("10.0.0.9", T0, "e1"), T0))
    changes = b.apply(intrusion("10.0.0.9", T0 + timedelta(minutes=30), "-", firing=False), T0)
    assert [c.kind for c in changes] == ["resolved"]
    assert changes[0].alert.ends_at == T0 + timedelta(minutes=30)
    assert changes[0].alert.resolved_by is None
    assert b.alerts == {}
    assert notify(b, changes) == [("am", "resolved", 1), ("phone", "resolved", 1)]


def test_firing_again_after_resolution_is_a_new_occurrence() -> None:
    b = book()
    first = b.apply(intrusion("10.0.0.9", T0, "e1"), T0)[0].alert
    b.apply(intrusion("10.0.0.9", T0, "-", firing=False), T0)
    again = b.apply(intrusion("10.0.0.9", T0 + timedelta(hours=1), "e2"), T0)[0]
    assert again.kind == "fired"
    assert again.fingerprint == first.fingerprint and again.alert.id != first.id


def test_unacknowledged_alert_escalates_once_at_exactly_the_escalation_time() -> None:
    b = book()
    notify(b, b.apply(intrusion("10.0.0.9", T0, "e1"), T0))
    assert b.tick(T0 + timedelta(minutes=15) - timedelta(microseconds=1)) == []
    changes = b.tick(T0 + timedelta(minutes=15))
    assert [c.kind for c in changes] == ["escalated"]
    assert notify(b, changes) == [("ciso", "escalated", 1)]
    assert b.tick(T0 + timedelta(hours=2)) == []
    resolved = b.apply(intrusion("10.0.0.9", T0, "-", firing=False), T0)
    assert notify(b, resolved) == [
        ("am", "resolved", 1),
        ("ciso", "resolved", 1),
        ("phone", "resolved", 1),
    ]


def test_acknowledging_stops_escalation_and_is_shown_to_stateful_receivers() -> None:
    b = book()
    fired = b.apply(intrusion("10.0.0.9", T0, "e1"), T0)
    notify(b, fired)
    ref = fired[0].alert.id
    acked = b.acknowledge(ref, "an.nguyen", "đang xử lý", T0 + timedelta(minutes=2))
    assert acked[0].alert.state == "acknowledged"
    assert acked[0].actor == "an.nguyen" and acked[0].comment == "đang xử lý"
    assert notify(b, acked) == [("am", "acknowledged", 1), ("phone", "acknowledged", 1)]
    assert b.acknowledge(ref, "someone.else", None, T0) == []  # idempotent
    assert b.tick(T0 + timedelta(hours=1)) == []  # no escalation
    # handing it back restarts the escalation clock
    back = b.unacknowledge(ref, "an.nguyen", "nhầm", T0 + timedelta(hours=1))
    assert back[0].alert.state == "firing"
    assert b.tick(T0 + timedelta(hours=1, minutes=14)) == []
    assert [c.kind for c in b.tick(T0 + timedelta(hours=1, minutes=15))] == ["escalated"]


def test_manual_resolution_and_actions_on_unknown_alerts() -> None:
    b = book()
    fired = b.apply(intrusion("10.0.0.9", T0, "e1"), T0)
    changes = b.resolve(fired[0].fingerprint, "lan.tran", "false positive", T0)
    assert changes[0].alert.resolved_by == "lan.tran"
    with pytest.raises(AlertActionError, match="no open alert"):
        b.acknowledge(fired[0].alert.id, "lan.tran", None, T0)
    with pytest.raises(AlertActionError):
        b.resolve("nope", "lan.tran", None, T0)


def test_silence_mutes_matching_alerts_only_while_active_and_notifies_after() -> None:
    b = book()
    silence = Silence(
        id="s1",
        matchers=(Matcher.parse('src_ip="10.0.0.9"'),),
        starts_at=T0 + timedelta(minutes=10),
        ends_at=T0 + timedelta(minutes=40),
        author="lan.tran",
        comment="pentest by the provincial SOC",
    )
    assert b.add_silence(silence, T0) == []  # not active yet
    t = T0 + timedelta(minutes=20)
    fired = b.apply(intrusion("10.0.0.9", t, "e1"), t)
    other = b.apply(intrusion("10.0.0.7", t, "e2"), t)
    assert fired[0].alert.silenced_by == ("s1",)
    assert notify(b, fired + other, t) == [("am", "firing", 1), ("phone", "firing", 1)]
    # a silenced alert does not escalate
    assert [c.fingerprint for c in b.tick(T0 + timedelta(minutes=39))] == [other[0].fingerprint]
    ended = b.tick(T0 + timedelta(minutes=40))
    assert [c.kind for c in ended] == ["unsilenced"]
    assert notify(b, ended, T0 + timedelta(minutes=40)) == [
        ("am", "firing", 1),
        ("phone", "firing", 1),
    ]
    assert b.silences == {}


def test_expiring_a_silence_by_hand_and_silencing_open_alerts() -> None:
    b = book()
    fired = b.apply(intrusion("10.0.0.9", T0, "e1"), T0)
    silence = Silence(
        id="s2",
        matchers=(Matcher.parse('alertname=~"intru.*"'),),
        starts_at=T0,
        ends_at=T0 + timedelta(days=1),
        author="lan.tran",
        comment="known scanner",
    )
    changes = b.add_silence(silence, T0)
    assert [(c.kind, c.actor, c.comment) for c in changes] == [
        ("silenced", "lan.tran", "known scanner")
    ]
    assert b.alerts[fired[0].fingerprint].muted
    unsilenced = b.expire_silence("s2", "an.nguyen", T0)
    assert [c.kind for c in unsilenced] == ["unsilenced"]
    with pytest.raises(AlertActionError):
        b.expire_silence("s2", "an.nguyen", T0)


def test_network_outage_inhibits_services_at_the_same_site_only() -> None:
    b = book()
    portal = b.apply(service_down("portal", "dc-tinh"), T0)
    changes = b.apply(network_down("dc-tinh"), T0)
    assert [c.kind for c in changes] == ["fired", "inhibited"]
    mail = b.apply(service_down("mail", "dc-tinh"), T0)
    remote = b.apply(service_down("web", "dc-huyen"), T0)
    assert mail[0].alert.inhibited_by == (changes[0].fingerprint,)
    assert remote[0].alert.inhibited_by == ()
    assert notify(b, mail + remote) == [("am", "firing", 1), ("ops-mail", "firing", 1)]
    # the network comes back: the services still down are notified now
    back = b.apply(network_down("dc-tinh", firing=False), T0)
    assert sorted(c.kind for c in back) == ["resolved", "uninhibited", "uninhibited"]
    assert {c.fingerprint for c in back if c.kind == "uninhibited"} == {
        portal[0].fingerprint,
        mail[0].fingerprint,
    }


def test_an_alert_that_opens_and_clears_within_one_cycle_tells_nobody() -> None:
    b = book()
    changes = b.apply(intrusion("10.0.0.9", T0, "e1"), T0)
    changes += b.apply(intrusion("10.0.0.9", T0, "-", firing=False), T0)
    assert notify(b, changes) == []


def test_book_restored_from_storage_keeps_open_alerts_only() -> None:
    b = book()
    open_alert = b.apply(intrusion("10.0.0.1", T0, "e1"), T0)[0].alert
    closed = b.apply(intrusion("10.0.0.2", T0, "e2"), T0)[0].alert
    resolved = b.resolve(closed.id, "x", None, T0)[0].alert
    restored = book(alerts=[open_alert, resolved])
    assert list(restored.alerts) == [open_alert.fingerprint]
    assert restored.find(open_alert.id) is restored.alerts[open_alert.fingerprint]


def test_more_severe_evidence_raises_the_alert_and_tells_those_already_told() -> None:
    b = book()
    first = intrusion("10.0.0.9", T0, "e1")
    notify(b, b.apply(msgspec.structs.replace(first, severity="high"), T0))
    same = b.apply(msgspec.structs.replace(first, severity="medium"), T0)
    assert [c.kind for c in same] == ["updated"]  # never lowered
    raised = b.apply(intrusion("10.0.0.9", T0, "e2"), T0)
    assert [c.kind for c in raised] == ["severity_raised"]
    alert = raised[0].alert
    assert alert.severity == "critical" and alert.labels["severity"] == "critical"
    assert notify(b, raised) == [("am", "firing", 1), ("phone", "firing", 1)]
