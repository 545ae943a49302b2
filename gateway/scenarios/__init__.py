"""Acceptance scenarios: `gateway scenario play FILE` replays a dated timeline through the real services.

* ``timeline`` — the scenario file (JSON) and every check made on it before anything runs;
* ``delivery`` — the in-process broker: the relay's publishes handed to the consumer's receive path;
* ``scratch`` — the throw-away database (SQLite in a temporary folder, or a scratch PostgreSQL database);
* ``player`` — the simulated clock driving submit, deliver, answer and the tracker's tick;
* ``figures`` — the requested reports, built by the same functions as `gateway reports` / `gateway scores`.
"""
