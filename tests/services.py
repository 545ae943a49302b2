"""Finding the real broker and database for connected tests.

Order: an explicit URL in the environment; the service on loopback; a container started with
testcontainers when a Docker engine answers; otherwise a failure that says how to start one.
A test that claims to test delivery never runs against a mock.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

RABBITMQ_HINT = (
    "no RabbitMQ on 127.0.0.1:5672 and no Docker engine to start one. Start it with "
    "`rabbitmq-server -detached` (Debian package rabbitmq-server) or `docker compose up -d rabbitmq`, "
    "or point GATEWAY_TEST_AMQP_URL at a broker."
)
POSTGRES_HINT = (
    "no PostgreSQL on 127.0.0.1:5432 and no Docker engine to start one. Start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or "
    "`docker compose up -d postgres`, or point GATEWAY_TEST_POSTGRES_URL at a server."
)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    try:
        import docker  # installed with testcontainers

        docker.from_env().ping()
        return True
    except Exception:
        return False


@contextmanager
def rabbitmq_url() -> Iterator[str]:
    if url := os.environ.get("GATEWAY_TEST_AMQP_URL"):
        yield url
        return
    if port_open("127.0.0.1", 5672):
        yield "amqp://guest:guest@127.0.0.1:5672/"
        return
    if docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            params = container.get_connection_params()
            yield f"amqp://guest:guest@{params.host}:{params.port}/"
        return
    raise RuntimeError(RABBITMQ_HINT)


@contextmanager
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server URL (asyncpg driver) whose user may create databases."""
    if url := os.environ.get("GATEWAY_TEST_POSTGRES_URL"):
        yield url
        return
    if port_open("127.0.0.1", 5432):
        yield "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        return
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as container:
            yield container.get_connection_url()
        return
    raise RuntimeError(POSTGRES_HINT)
