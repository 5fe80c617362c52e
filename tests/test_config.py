"""Settings from the environment and the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from compatheap import ConfigError, _config

from .conftest import needs_emulation, run_python


def test_defaults_without_file(tmp_path: Path) -> None:
    settings = _config.load({"COMPATHEAP_CONFIG": str(tmp_path / "missing.toml")})
    assert settings.backend is None and settings.backend_source == "default"
    assert settings.debug == frozenset()
    assert not settings.config_exists


def test_default_path_is_platformdirs_user_config() -> None:
    import platformdirs

    expected = Path(platformdirs.user_config_path("compatheap")) / "config.toml"
    assert _config.config_path({}) == expected


def test_file_values_and_sources(config_file: Path) -> None:
    config_file.write_text('backend = "emulated"\ndebug = ["tail", "free"]\n')
    settings = _config.load({"COMPATHEAP_CONFIG": str(config_file)})
    assert (settings.backend, settings.backend_source) == ("emulated", "config file")
    assert (settings.debug, settings.debug_source) == (frozenset({"tail", "free"}), "config file")
    assert settings.config_exists


def test_environment_overrides_file(config_file: Path) -> None:
    config_file.write_text('backend = "kernel32"\ndebug = ["tail"]\n')
    settings = _config.load(
        {"COMPATHEAP_CONFIG": str(config_file), "COMPATHEAP_BACKEND": "emulated", "COMPATHEAP_DEBUG": "free"}
    )
    assert settings.backend == "emulated" and settings.backend_source == "environment"
    assert settings.debug == frozenset({"free"}) and settings.debug_source == "environment"


def test_debug_off_spellings() -> None:
    assert _config.parse_debug("", "x") == frozenset()
    assert _config.parse_debug("off", "x") == frozenset()
    assert _config.parse_debug(" Tail , FREE ", "x") == frozenset({"tail", "free"})


@pytest.mark.parametrize("value", ["tail,bogus", ["heap"], 3])
def test_bad_debug_values_are_refused(value: object) -> None:
    with pytest.raises(ConfigError):
        _config.parse_debug(value, "origin")


def test_invalid_toml_names_file_and_line(config_file: Path) -> None:
    config_file.write_text('backend = "emulated"\ndebug = [tail]\n')
    with pytest.raises(ConfigError) as info:
        _config.load({"COMPATHEAP_CONFIG": str(config_file)})
    message = str(info.value)
    assert str(config_file) in message and "line 2" in message
    assert "\n" not in message


def test_binary_config_file_is_a_config_error(config_file: Path) -> None:
    config_file.write_bytes(b'\xff\xfebackend = "emulated"\n')
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        _config.load({"COMPATHEAP_CONFIG": str(config_file)})
    assert str(config_file) in str(info.value)


@pytest.mark.parametrize("text", ["backend = 3\n", 'colour = "red"\n'])
def test_wrong_settings_are_refused(config_file: Path, text: str) -> None:
    config_file.write_text(text)
    with pytest.raises(ConfigError, match=str(config_file).replace("\\", "\\\\")):
        _config.load({"COMPATHEAP_CONFIG": str(config_file)})


@needs_emulation
def test_debug_environment_reaches_the_backend() -> None:
    result = run_python(
        "import compatheap; print(sorted(compatheap.backend.debug_checks))",
        {"COMPATHEAP_DEBUG": "tail,free", "COMPATHEAP_BACKEND": "emulated"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['free', 'tail']"
