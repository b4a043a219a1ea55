"""In-memory fakes of rotator's ports (rotator.ports), for unit tests that run in milliseconds.

They model Secrets Manager and a MySQL/MariaDB server, not the rotation: the core's
decisions stay in src/rotator. Contract tests (tests/unit/contract, tests/integration/
contract) run the same cases against a fake and the real adapter, so that a fake that
drifts from the adapter fails there first.
"""
