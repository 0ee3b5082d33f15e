"""The per-step progress hook the page shows (``protect_array(on_step=...)``): called once per
optimiser iteration, and the protected image stays byte-identical."""
from faceshield.pipeline.config import ProtectConfig
from faceshield.pipeline.image import protect_array


def test_on_step_reports_every_step_and_changes_nothing(astronaut):
    config = ProtectConfig(steps=3)
    calls = []
    a = protect_array(astronaut, config, on_step=lambda done, total: calls.append((done, total)))
    b = protect_array(astronaut, config)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert a.rgb.tobytes() == b.rgb.tobytes()


def test_on_step_with_adam(images):
    from faceshield.attacks import create_attack

    attack = create_attack("cw", lambda xa, x: -(xa - x).pow(2).flatten(1).mean(1), steps=2)
    calls = []
    attack.on_step = lambda done, total: calls.append((done, total))
    attack(images)
    assert calls == [(1, 2), (2, 2)]
