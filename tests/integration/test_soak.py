"""A small soak: ten rotations while an application on rotator-client works, through the
real handler (bench/soak.py's run_soak, the engine of ``make soak``).

``make soak`` runs the full-size version (100 rotations, 2 instances x 4 workers, both
families; ``--server postgresql`` for PostgreSQL) and prints figures; this one only asserts
what must hold at any size, on MariaDB, MySQL and PostgreSQL 15 (the application on
rotator-client's pg8000 glue there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bench.application import REFUSED_LOGIN, LoadConfig
from bench.soak import MAX_READS_PER_ROTATION, SoakConfig, run_soak
from tests.integration.conftest import LeakCheck
from tests.support.aws import faithful_moto
from tests.support.world import World

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _faithful_moto() -> Iterator[None]:
    with faithful_moto():
        yield


def small_soak() -> SoakConfig:
    # A credential read from AWSCURRENT late in one rotation stays valid until the
    # next rotation's setSecret: back to back that is a few tens of milliseconds, less
    # than a thread can be descheduled on a loaded two-core machine. A 0.2 s pause
    # between rotations (hours on a real schedule) keeps the test about the rotator.
    return SoakConfig(
        rotations=10,
        load=LoadConfig(apps=2, workers=2, recycle_every=5),
        baseline_seconds=0.3,
        after_seconds=0.3,
        gap_seconds=0.2,
        max_seconds=120,
    )


@pytest.mark.every_engine("postgresql15")
def test_alternating_users_rotate_ten_times_under_load_without_a_failed_transaction(
    world: World, leak_check: LeakCheck
) -> None:
    """Ten rotations while two instances of two workers log in every five transactions: nothing
    fails, each instance reads the secret at most twice per rotation, both labels work."""
    assert world.invoke is not None
    report = run_soak(world, world.invoke, small_soak(), mode="alternating")

    assert report.rotations_completed == 10, report.rotation_errors
    assert report.load.transactions_failed == 0, report.load.as_dict()["failures"]
    assert report.load.transactions_ok > 0
    assert report.load.logins > 4  # connections were recycled: new logins happened during rotations
    assert report.load.auth_failures_first_try > 0  # stale logins were refused, and recovered
    assert report.load.logins_recovered_by_reread == report.load.auth_failures_first_try
    assert 0 < report.reads_per_rotation["max"] <= MAX_READS_PER_ROTATION
    assert report.load.secret_reads == report.load.client_reads
    assert report.adoption_seconds["count"] > 0
    assert report.final_current_works and report.final_previous_works
    leak_check.assert_clean(*world.all_passwords())


@pytest.mark.every_engine("postgresql15")
def test_single_user_rotation_under_load_completes_and_confines_failures_to_its_window(
    world_factory: Callable[..., World], leak_check: LeakCheck
) -> None:
    """Single user without dual passwords: every rotation completes; only refused logins fail
    (between setSecret and finishSecret, and within the client's short hold-off after a re-read
    that found nothing newer), and the instances recover after them."""
    world = world_factory(single_user=True)
    assert world.invoke is not None
    report = run_soak(world, world.invoke, small_soak(), mode="single-user")

    assert report.rotations_completed == 10, report.rotation_errors
    refused = REFUSED_LOGIN[world.server.family]  # 1045; PostgreSQL's 28P01
    assert set(report.load.failed_by_code) <= {refused}, report.load.failed_by_code
    assert report.load.logins_recovered_by_reread > 0
    assert report.final_current_works and not report.final_previous_works
    leak_check.assert_clean(*world.all_passwords())
