from tests.support.world import World


def test_full_rotation_smoke(world: World) -> None:
    results = world.rotate()
    assert [r["outcome"] for r in results] == ["created", "twin-synced", "twin-verified", "promoted"]
    assert world.app_secret()["username"] == "app_clone"
    assert world.can_use_grants(world.app_secret())
    assert world.can_use_grants(world.app_secret("AWSPREVIOUS"))
