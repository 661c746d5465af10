"""Access matrix entries of digest subscriptions (service/digests/views.py) and the outbox
(service/mail/views.py), and builders the tests of those domains share.

Subscriptions: a manager manages its own, an admin every manager's; supervisors and departments
are refused (403). Outbox: admins and supervisors read every message, a manager its own digests,
departments are refused; only supervisors (and admins) queue a message again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from service.accounts.models import User
from service.digests import flows as digest_flows
from service.digests.models import DigestSubscription
from service.mail import service as mail
from service.mail.models import OutboxMessage
from tests.access_matrix import Access, Call, expect, register, supervisors
from tests.api_fixtures import DEPT_A, World

SUBSCRIBERS = expect(admin=200, supervisor=403, dept_a=403, dept_b=403, manager_a=200)
READERS = expect(admin=200, supervisor=200, dept_a=403, dept_b=403, manager_a=200)


def subscribe(
    world: World, user: User, *, cadence: str = "weekly", depts: tuple[str, ...] = (DEPT_A,)
) -> DigestSubscription:
    with world.session_factory() as session:
        sub = digest_flows.subscribe(
            session, user_id=user.id, cadence=cadence, depts=list(depts), actor="system"
        )
    assert sub is not None
    return sub


def outbox_message(world: World, *, owner: User | None, status: str = "sent") -> OutboxMessage:
    """A digest-like message owned by `owner`, in `status`."""
    now = datetime.now(UTC)
    with world.session_factory() as session:
        message = mail.enqueue(
            session,
            kind="digest",
            source_key=f"test:{uuid.uuid4().hex}",
            recipients=["someone@example.cn"],
            subject="合规周报 / Compliance digest",
            language="zh",
            html_body="<p>摘要</p>",
            text_body="摘要",
            owner_id=None if owner is None else owner.id,
            now=now,
        )
        message.status = status
        session.commit()
        return message


def _manager_subscription(world: World, _principal: str) -> Call:
    sub = subscribe(world, world.users["manager_a"])
    return Call(path={"subscription_id": sub.id})


def _new_subscription(world: World, principal: str) -> Call:
    if principal == "admin":
        other = world.make_user(role="manager", scope_depts=[DEPT_A])
        return Call(json={"user_id": other.id, "cadence": "monthly", "depts": [DEPT_A]})
    return Call(json={"cadence": "monthly", "depts": [DEPT_A], "language": "en"})


def _two_subscriptions(world: World, _principal: str) -> Call:
    subscribe(world, world.users["manager_a"])
    subscribe(world, world.make_user(role="manager", scope_depts=[DEPT_A]))
    return Call()


def _check_subscriptions(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    owners = {item["user_id"] for item in response.json()["items"]}
    if principal == "manager_a":
        assert owners == {world.users["manager_a"].id}
    else:
        assert len(owners) == 2


def _own_message(world: World, _principal: str) -> Call:
    outbox_message(world, owner=None)
    message = outbox_message(world, owner=world.users["manager_a"])
    return Call(path={"message_id": message.id})


def _check_outbox(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    owners = {item["owner_id"] for item in response.json()["items"]}
    if principal == "manager_a":
        assert owners == {world.users["manager_a"].id}
    else:
        assert owners == {None, world.users["manager_a"].id}


def _failed_message(world: World, _principal: str) -> Call:
    return Call(path={"message_id": outbox_message(world, owner=None, status="failed").id})


def _check_preview(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code == 200:
        assert response.headers["content-type"].startswith("text/html")
        assert "cid:" not in response.text  # images inlined for a browser


register(
    "GET",
    "/api/v1/digests/subscriptions",
    Access(expect=SUBSCRIBERS, build=_two_subscriptions, check=_check_subscriptions),
)
register(
    "POST",
    "/api/v1/digests/subscriptions",
    Access(
        expect=expect(admin=201, supervisor=403, dept_a=403, dept_b=403, manager_a=201),
        build=_new_subscription,
    ),
)
register(
    "GET",
    "/api/v1/digests/subscriptions/{subscription_id}",
    Access(expect=SUBSCRIBERS, build=_manager_subscription),
)
register(
    "PATCH",
    "/api/v1/digests/subscriptions/{subscription_id}",
    Access(
        expect=SUBSCRIBERS,
        build=lambda world, principal: Call(
            path=_manager_subscription(world, principal).path, json={"active": False}
        ),
    ),
)
register(
    "DELETE",
    "/api/v1/digests/subscriptions/{subscription_id}",
    Access(
        expect=SUBSCRIBERS,
        build=_manager_subscription,
    ),
)
register(
    "GET",
    "/api/v1/digests/subscriptions/{subscription_id}/preview",
    Access(expect=SUBSCRIBERS, build=_manager_subscription, check=_check_preview),
)
register(
    "GET",
    "/api/v1/outbox",
    Access(
        expect=READERS,
        build=lambda world, principal: Call(params=_own_message(world, principal).params),
        check=_check_outbox,
    ),
)
register("GET", "/api/v1/outbox/{message_id}", Access(expect=READERS, build=_own_message))
register("POST", "/api/v1/outbox/{message_id}/retry", Access(expect=supervisors(), build=_failed_message))
