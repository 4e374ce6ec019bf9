from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from datawheel.config import Config, render_default_config
from datawheel.errors import ConfigError, WorkspaceError
from datawheel.workspace import Workspace


def test_default_config_round_trips() -> None:
    text = render_default_config()
    assert "# Embedding model" in text  # commented
    assert Config.from_dict(yaml.safe_load(text)) == Config()


def test_unknown_key_names_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "datawheel.yaml"
    path.write_text("search:\n  fuson: rrf\n")
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    msg = str(err.value)
    assert "search.fuson: unknown key" in msg
    assert "fusion" in msg and "did you mean 'fusion'" in msg


def test_unknown_key_in_a_list_item_names_the_valid_ones() -> None:
    # sources: {name: {clean: {standardise: [{...}]}}}: a dict, an optional model and a list
    bad = {"column": "day", "how": "date", "formats": ["%d/%m/%Y"]}
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"sources": {"crm": {"path": "x.csv", "clean": {"standardise": [bad]}}}})
    msg = str(err.value)
    assert "sources.crm.clean.standardise.0.formats: unknown key" in msg
    assert "valid keys here: column, how, input_formats" in msg
    assert "did you mean 'input_formats'" in msg


def test_bad_value_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"embedding": {"runtime": "cuda"}})
    choices = "'auto', 'torch', 'onnx', 'onnx-int8', 'torch-bf16', 'openvino' or 'openvino-int8'"
    assert choices in str(err.value)


def test_env_database_url_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config.from_dict({"store": {"url": "env:MY_DB"}})
    with pytest.raises(ConfigError, match="MY_DB is not set"):
        cfg.database_url(tmp_path)
    monkeypatch.setenv("MY_DB", f"sqlite:///{tmp_path / 'x.db'}")
    assert cfg.database_url(tmp_path).endswith("x.db")


def test_open_missing_workspace_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="datawheel init"):
        Workspace.open(tmp_path / "nope")
