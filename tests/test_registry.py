from importlib import metadata

import pytest
from pydantic import BaseModel, ConfigDict

from moeheads import registry as registry_module
from moeheads.errors import ConfigError
from moeheads.registry import Registry


@pytest.fixture
def things() -> Registry:
    reg: Registry = Registry("thing")

    @reg.register("alpha")
    class Alpha:
        """First thing.

        More text.
        """

        def __init__(self, size: int, scale: float = 1.0, tags: list[str] | None = None):
            self.size, self.scale, self.tags = size, scale, tags

    @reg.register("beta", description="second thing")
    def beta(flag: bool = False) -> tuple[str, bool]:
        return ("beta", flag)

    return reg


def test_create_validates_and_coerces(things: Registry) -> None:
    obj = things.create("alpha", size="3", scale=2)
    assert (obj.size, obj.scale, obj.tags) == (3, 2.0, None)
    assert isinstance(obj.scale, float)
    assert things.create("beta", flag=True) == ("beta", True)


def test_unknown_option_is_named(things: Registry) -> None:
    with pytest.raises(ConfigError, match=r"thing 'alpha': unknown option 'sise'"):
        things.create("alpha", size=1, sise=2)


def test_missing_and_wrong_type_named(things: Registry) -> None:
    with pytest.raises(ConfigError, match="missing option 'size'"):
        things.create("alpha")
    with pytest.raises(ConfigError, match="option 'scale'"):
        things.create("alpha", size=1, scale="big")


def test_unknown_name_suggests_closest(things: Registry) -> None:
    with pytest.raises(ConfigError, match=r"unknown thing 'alpah'; did you mean 'alpha'\?"):
        things.create("alpah")
    with pytest.raises(ConfigError, match=r"registered: alpha, beta"):
        things.get("zzz")


def test_duplicate_name_rejected(things: Registry) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        things.register("alpha")(lambda: None)


def test_list_with_fnmatch_and_descriptions(things: Registry) -> None:
    assert things.list() == ["alpha", "beta"]
    assert things.list("b*") == ["beta"]
    assert things.list("*ph*") == ["alpha"]
    assert things.describe() == [("alpha", "First thing"), ("beta", "second thing")]
    assert "alpha" in things and len(things) == 2


def test_explicit_options_model_and_defaults_override() -> None:
    reg: Registry = Registry("thing")

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        width: int = 4

    @reg.register("sized", options=Options)
    def sized(width: int) -> int:
        return width

    reg.register("wide", defaults={"width": 64})(sized)
    assert reg.create("sized") == 4
    assert reg.create("wide") == 64
    assert reg.create("wide", width=8) == 8
    assert reg.get("sized").option_names() == ["width"]


def test_plugins_loaded_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry = Registry("thing")
    calls = []

    def plugin() -> None:
        calls.append(1)
        reg.register("from_plugin")(lambda: "plugged")

    class FakeEntryPoint:
        def load(self):
            return plugin

    def fake_entry_points(group: str):
        assert group == "moeheads.plugins"
        return [FakeEntryPoint()]

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry_module.plugins, "_plugins_loaded", False)
    assert reg.create("from_plugin") == "plugged"
    reg.list()
    assert calls == [1]  # loaded once per process
