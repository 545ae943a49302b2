"""Tools for developers and drills: a local RabbitMQ cluster on loopback. Not used by a running gateway."""
