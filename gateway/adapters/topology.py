"""The RabbitMQ topology as data: declared by the gateway at start-up, exportable as broker definitions.

- one durable direct exchange; the routing key is the recipient's 9-digit township code;
- one quorum queue per hosting gateway (a county or province gateway hosts many townships), bound once
  per hosted township — 40,000 townships become a few hundred queues, not 40,000 (measured in
  docs/transport.md: an idle quorum queue costs ~150 KB and slows broker start-up; a binding ~1.5 KB);
- a dead-letter exchange and a ``poison`` quorum queue: a message that keeps failing is moved there
  after ``delivery_limit`` attempts, at least once, instead of being dropped.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class Topology:
    exchange: str
    queue: str
    delivery_limit: int = DELIVERY_LIMIT

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dlx"

    @property
    def poison_queue(self) -> str:
        return f"{self.exchange}.poison"

    def inbox_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            # at-least-once dead-lettering needs reject-publish overflow; without it a DLX move can lose messages.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    @staticmethod
    def poison_arguments() -> dict[str, Any]:
        return {"x-queue-type": "quorum"}

    def definitions(self, townships: list[str], vhost: str = "/") -> dict[str, Any]:
        """The same topology in the format of `rabbitmqctl import_definitions`."""
        return {
            "exchanges": [
                {"name": self.exchange, "vhost": vhost, "type": "direct", "durable": True, "auto_delete": False,
                 "internal": False, "arguments": {}},
                {"name": self.dead_letter_exchange, "vhost": vhost, "type": "fanout", "durable": True,
                 "auto_delete": False, "internal": False, "arguments": {}},
            ],
            "queues": [
                {"name": self.queue, "vhost": vhost, "durable": True, "auto_delete": False,
                 "arguments": self.inbox_arguments()},
                {"name": self.poison_queue, "vhost": vhost, "durable": True, "auto_delete": False,
                 "arguments": self.poison_arguments()},
            ],
            "bindings": [
                {"source": self.exchange, "vhost": vhost, "destination": self.queue, "destination_type": "queue",
                 "routing_key": code, "arguments": {}}
                for code in sorted(townships)
            ]
            + [
                {"source": self.dead_letter_exchange, "vhost": vhost, "destination": self.poison_queue,
                 "destination_type": "queue", "routing_key": "", "arguments": {}}
            ],
        }


@dataclass(frozen=True)
class Permissions:
    """RabbitMQ's three permission patterns (regular expressions over exchange and queue names)."""

    configure: str
    write: str
    read: str


def gateway_permissions(topology: Topology, *, declares: bool = False) -> Permissions:
    """What one gateway's broker user may do, and nothing more.

    Default (the province set-up, ``GATEWAY_DECLARE_TOPOLOGY=false``): the operator declares the
    topology from definitions, and the gateway may only publish to the township exchange (write) and
    consume its own queue (read); it configures nothing, so it can neither bind its queue to other
    townships' routing keys nor delete anything shared. ``declares=True`` (a gateway that declares its
    own topology, as on a single trial machine) adds configure on its own queue and on the shared
    exchanges and poison queue it declares, and the binding rights that go with them.
    """
    exchange, queue = re.escape(topology.exchange), re.escape(topology.queue)
    if not declares:
        return Permissions(configure="^$", write=f"^{exchange}$", read=f"^{queue}$")
    dlx, poison = re.escape(topology.dead_letter_exchange), re.escape(topology.poison_queue)
    return Permissions(
        configure=f"^({exchange}|{dlx}|{poison}|{queue})$",
        write=f"^({exchange}|{poison}|{queue})$",
        read=f"^({exchange}|{dlx}|{queue})$",
    )


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt ‖ SHA-256(salt ‖ password)).

    Definitions then carry no password in clear.
    """
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def user_definitions(users: dict[str, tuple[str, Permissions]], vhost: str = "/") -> dict[str, Any]:
    """Users (name → (password, permissions)) in the format of ``rabbitmqctl import_definitions``."""
    return {
        "users": [
            {"name": name, "password_hash": password_hash(password),
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}
            for name, (password, _) in sorted(users.items())
        ],
        "permissions": [
            {"user": name, "vhost": vhost, "configure": p.configure, "write": p.write, "read": p.read}
            for name, (_, p) in sorted(users.items())
        ],
    }


def merge_definitions(*parts: dict[str, Any]) -> dict[str, Any]:
    """Several definition fragments as one (lists of the same key are concatenated, duplicates dropped)."""
    merged: dict[str, list[Any]] = {}
    for part in parts:
        for key, items in part.items():
            bucket = merged.setdefault(key, [])
            for item in items:
                if item not in bucket:
                    bucket.append(item)
    return merged


def federation_definitions(
    upstreams: dict[str, str], *, exchange: str = "township.exchange", vhost: str = "/"
) -> dict[str, Any]:
    """Definitions that join provincial clusters: ``exchange`` here is federated from every other province.

    A federated exchange carries the downstream's bindings (its townships) to each upstream, so a message
    published in province A for a township hosted in province B is routed by A's broker to B's — with
    ``ack-mode: on-confirm`` it is acked upstream only once B's broker confirmed it: at least once, and
    no relay of our own. ``upstreams`` maps a province name to its AMQP URI (credentials from a secret).
    """
    return {
        "parameters": [
            {"vhost": vhost, "component": "federation-upstream", "name": name,
             "value": {"uri": uri, "ack-mode": "on-confirm", "max-hops": 1, "prefetch-count": 1000,
                       "reconnect-delay": 5, "trust-user-id": False, "exchange": exchange}}
            for name, uri in sorted(upstreams.items())
        ],
        "policies": [
            {"vhost": vhost, "name": "federate-township-exchange", "pattern": f"^{exchange.replace('.', '[.]')}$",
             "apply-to": "exchanges", "priority": 10, "definition": {"federation-upstream-set": "all"}}
        ],
    }
