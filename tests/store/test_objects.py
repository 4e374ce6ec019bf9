"""Object storage against a real S3-protocol server on 127.0.0.1 (moto's standalone server).

The server enforces credentials: one IAM user's key is the only one S3 accepts. No test
reaches beyond the loopback address (instance metadata and proxies are switched off).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from datawheel.config import CONFIG_FILE
from datawheel.errors import ConfigError, StorageError
from datawheel.store.mirror import MANIFEST
from datawheel.workspace import Workspace

boto3 = pytest.importorskip("boto3", reason="install the test extra: pip install -e '.[test]'")
moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
pytest.importorskip("s3fs", reason="pip install -e '.[s3]'")

BUCKET = "datawheel"
PREFIX = "kb"
QUESTION = "What is the restocking fee for opened electronics?"
CORRECTION = "15% on opened electronics."
KEY_VAR, SECRET_VAR = "DW_TEST_S3_KEY", "DW_TEST_S3_SECRET"


@dataclass
class S3:
    endpoint: str
    key: str
    secret: str
    client: Any

    def objects(self, bucket: str = BUCKET) -> dict[str, bytes]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return {k: self.client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _set_auth(endpoint: str, free_actions: str) -> None:
    """moto checks credentials once this many actions have run ("0": from now on)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_actions.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            mp.delenv(name, raising=False)
        port = _free_port()
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        endpoint = f"http://127.0.0.1:{port}"
        try:
            setup = {"endpoint_url": endpoint, "region_name": "us-east-1"}
            iam = boto3.client(
                "iam", aws_access_key_id="setup", aws_secret_access_key="setup", **setup
            )
            iam.create_user(UserName="datawheel")
            key = iam.create_access_key(UserName="datawheel")["AccessKey"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
            iam.put_user_policy(
                UserName="datawheel", PolicyName="s3", PolicyDocument=json.dumps(policy)
            )
            client = boto3.client(
                "s3",
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
                **setup,
            )
            _set_auth(endpoint, "0")
            yield S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], client)
        finally:
            _set_auth(endpoint, "inf")
            server.stop()


@pytest.fixture()
def bucket(s3: S3) -> Iterator[str]:
    s3.client.create_bucket(Bucket=BUCKET)
    yield BUCKET
    for key in s3.objects():
        s3.client.delete_object(Bucket=BUCKET, Key=key)
    s3.client.delete_bucket(Bucket=BUCKET)


def _configure(path: Path, storage: dict[str, Any]) -> None:
    cfg = path / CONFIG_FILE
    data = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
    data["storage"] = storage
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture()
def kb(sample: Path, tmp_path: Path, s3: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the sample knowledge base pointed at the bucket through datawheel.yaml."""
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    monkeypatch.setenv(KEY_VAR, s3.key)
    monkeypatch.setenv(SECRET_VAR, s3.secret)
    _configure(
        path,
        {
            "url": f"s3://{BUCKET}/{PREFIX}",
            "endpoint_url": s3.endpoint,
            "key": f"env:{KEY_VAR}",
            "secret": f"env:{SECRET_VAR}",
            "region": "us-east-1",
            "timeout_s": 5,
        },
    )
    yield path


def _docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "returns.md").write_text("# Returns\n\nReturns are accepted for 45 days.\n")
    (folder / "shipping.txt").write_text("Orders ship within two working days.\n")
    (folder / "warranty.md").write_text("# Warranty\n\nThe warranty covers two years.\n")
    return folder


def _original_key(data: bytes, name: str) -> str:
    return f"{PREFIX}/originals/{hashlib.sha256(data).hexdigest()}/{name}"


def _promote(ws: Workspace) -> str:
    """A correction makes improve promote a version (answer memory refreshed)."""
    first = ws.ask(QUESTION)
    ws.review(ws.feedback(first.id, "down", correction=CORRECTION).review_id, "approve")
    report = ws.improve(finetune=False)
    assert report.promoted and report.warnings == [], report.to_dict()
    return str(report.promoted)


# -- originals --------------------------------------------------------------------------


def test_ingested_files_and_uploads_are_copied_with_their_bytes(
    kb: Path, bucket: str, s3: S3, tmp_path: Path
) -> None:
    docs = _docs(tmp_path)
    with Workspace.open(kb) as ws:
        report = ws.ingest([docs])
        assert (report.added, report.failed) == (3, [])
        stored = s3.objects()
        for path in docs.iterdir():
            assert stored[_original_key(path.read_bytes(), path.name)] == path.read_bytes()
        assert len(ws.objects.originals()) == 3

        # Re-ingest and the same bytes under another name are not copied again.
        assert ws.ingest([docs]).unchanged == 3
        twin = tmp_path / "elsewhere" / "returns.md"
        twin.parent.mkdir()
        shutil.copy(docs / "returns.md", twin)
        assert ws.ingest([twin]).added == 1
        assert s3.objects().keys() == stored.keys()
        (entry,) = [o for o in ws.objects.originals() if o["name"] == "returns.md"]
        assert entry["paths"] == [str(docs / "returns.md"), str(twin)]
        assert entry["url"] == f"s3://{BUCKET}/" + _original_key(twin.read_bytes(), "returns.md")

        body = b"Gift cards never expire.\n"
        report = ws.ingest_uploads([("gift-cards.txt", io.BytesIO(body))])
        assert (report.added, report.failed) == (1, [])
        assert s3.objects()[_original_key(body, "gift-cards.txt")] == body


def test_a_file_url_works_too(sample: Path, tmp_path: Path) -> None:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    shared = tmp_path / "share"
    _configure(path, {"url": shared.as_uri() + "/datawheel"})
    docs = _docs(tmp_path)
    with Workspace.open(path) as ws:
        assert ws.ingest([docs]).failed == []
    copies = sorted(p.name for p in (shared / "datawheel" / "originals").rglob("*") if p.is_file())
    assert copies == ["returns.md", "shipping.txt", "warranty.md"]


def test_without_storage_nothing_changes(sample: Path, tmp_path: Path) -> None:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    with Workspace.open(path) as ws:
        assert ws.objects is None
        assert ws.ingest([_docs(tmp_path)]).failed == []
        assert ws.model_folder("v9", "models/v9") == path / "models" / "v9"
        with pytest.raises(ConfigError, match="set storage.url"):
            ws.sync_storage()


def test_a_secret_written_into_the_config_is_refused(sample: Path, tmp_path: Path) -> None:
    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    _configure(path, {"url": "s3://bucket/kb", "secret": "wJalrXUtnFEMI"})
    with pytest.raises(ConfigError, match=r"storage.secret: .*env:VAR_NAME"):
        Workspace.open(path)


# -- model versions ---------------------------------------------------------------------


def test_a_promoted_version_is_uploaded_and_a_fresh_worker_loads_it_back(
    kb: Path, bucket: str, s3: S3
) -> None:
    with Workspace.open(kb) as ws:
        version = _promote(ws)
    folder = kb / "models" / version
    local = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    stored = s3.objects()
    prefix = f"{PREFIX}/models/{version}/"
    remote = {k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)}
    manifest = json.loads(remote.pop(MANIFEST))
    assert remote == local and sorted(manifest["files"]) == sorted(local)

    shutil.rmtree(folder)  # a fresh worker: the store knows the version, the disk does not
    with Workspace.open(kb) as ws:
        answer = ws.ask(QUESTION)
        assert (answer.answered_from, answer.version) == ("memory", version)
        assert CORRECTION in answer.text
    fetched = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    assert fetched == local
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_versions_of_every_app_are_copied_and_fetched(kb: Path, bucket: str, s3: S3) -> None:
    from datawheel.improve.registry import Registry

    folder = kb / "models" / "leads-v1"
    (folder / "booster").mkdir(parents=True)
    (folder / "booster" / "model.txt").write_text("tree 0\n")
    (folder / "schema.json").write_text("{}")
    with Workspace.open(kb) as ws:
        registry = Registry(ws.store, kind="leads")
        registry.record(
            "leads-v1",
            status="candidate",
            parent=None,
            settings={},
            metrics={},
            artifacts="models/leads-v1",
            note="",
        )
        registry.promote("leads-v1")
        assert ws.sync_storage() == {"originals": [], "models": []}
        shutil.rmtree(folder)
        ws._fetch_current("leads")  # what leads score/train do first
    assert (folder / "booster" / "model.txt").read_text() == "tree 0\n"
    assert f"{PREFIX}/models/leads-v1/booster/model.txt" in s3.objects()


def test_a_version_never_uploaded_and_gone_here_is_a_clear_error(
    kb: Path, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.client.create_bucket(Bucket=BUCKET)
    try:
        monkeypatch.setenv(SECRET_VAR, "wrong")
        with Workspace.open(kb) as ws:
            first = ws.ask(QUESTION)
            ws.review(ws.feedback(first.id, "down", correction=CORRECTION).review_id, "approve")
            version = ws.improve(finetune=False).promoted
        shutil.rmtree(kb / "models" / str(version))
        monkeypatch.setenv(SECRET_VAR, s3.secret)
        with Workspace.open(kb) as ws, pytest.raises(StorageError) as caught:
            ws.ask(QUESTION)
        assert caught.value.reason == "missing"
        assert f"model version {version} is neither in" in str(caught.value)
        assert "datawheel rollback" in str(caught.value)
    finally:
        s3.client.delete_bucket(Bucket=BUCKET)


# -- failures ---------------------------------------------------------------------------


def test_a_bucket_that_does_not_exist_says_how_to_create_it(
    kb: Path, s3: S3, tmp_path: Path
) -> None:
    with Workspace.open(kb) as ws:
        with pytest.raises(StorageError) as caught:
            ws.sync_storage()
        message = str(caught.value)
        assert caught.value.reason == "no_bucket"
        assert f"bucket '{BUCKET}' does not exist at {s3.endpoint}" in message
        assert f"aws s3 mb s3://{BUCKET} --endpoint-url {s3.endpoint}" in message

        # Ingest still works; the copy is reported and retried once the bucket exists.
        docs = _docs(tmp_path)
        report = ws.ingest([docs])
        assert report.added == 3
        ((where, reason),) = report.failed
        assert where == f"s3://{BUCKET}/{PREFIX}"
        assert "3 file(s) not copied" in reason and "does not exist" in reason
        assert len(ws.objects.pending()) == 3
        assert [h.title for h in ws.search("warranty covers", k=1)] == ["Warranty"]

        s3.client.create_bucket(Bucket=BUCKET)
        try:
            assert ws.ingest([docs]).failed == []  # nothing changed; the pending are retried
            assert ws.objects.pending() == []
            assert len(s3.objects()) == 3
        finally:
            for key in s3.objects():
                s3.client.delete_object(Bucket=BUCKET, Key=key)
            s3.client.delete_bucket(Bucket=BUCKET)


@pytest.mark.parametrize("variable", [KEY_VAR, SECRET_VAR])
def test_wrong_credentials_name_the_setting_and_variable(
    kb: Path, bucket: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "AKIAWRONGWRONGWRONG0")
    with Workspace.open(kb) as ws, pytest.raises(StorageError) as caught:
        ws.sync_storage()
    message = str(caught.value)
    assert caught.value.reason == "credentials"
    assert "refused the credentials" in message
    assert f"storage.key (environment variable {KEY_VAR})" in message
    assert f"storage.secret (environment variable {SECRET_VAR})" in message


def test_an_unreachable_endpoint_names_the_setting(kb: Path) -> None:
    data = yaml.safe_load((kb / CONFIG_FILE).read_text())
    data["storage"]["endpoint_url"] = f"http://127.0.0.1:{_free_port()}"
    _configure(kb, data["storage"])
    with Workspace.open(kb) as ws, pytest.raises(StorageError) as caught:
        ws.sync_storage()
    assert caught.value.reason == "unreachable"
    assert "cannot reach the object store at http://127.0.0.1:" in str(caught.value)
    assert "check storage.endpoint_url" in str(caught.value)


def test_a_failed_model_upload_keeps_the_version_and_a_later_run_retries(
    kb: Path, bucket: str, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VAR, "wrong")
    with Workspace.open(kb) as ws:
        first = ws.ask(QUESTION)
        ws.review(ws.feedback(first.id, "down", correction=CORRECTION).review_id, "approve")
        report = ws.improve(finetune=False)
        version = report.promoted
        assert version is not None
        (warning,) = report.warnings
        assert f"model version {version} not copied to object storage" in warning
        assert "refused the credentials" in warning
        assert ws.ask(QUESTION).answered_from == "memory"  # the local version serves
    assert (kb / "models" / str(version)).is_dir()
    assert s3.objects() == {}

    monkeypatch.setenv(SECRET_VAR, s3.secret)
    with Workspace.open(kb) as ws:
        assert ws.sync_storage() == {"originals": [], "models": []}
    assert f"{PREFIX}/models/{version}/{MANIFEST}" in s3.objects()


def test_storage_sync_cli_copies_versions_made_before_storage_was_set(
    sample: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from datawheel.cli.main import app

    path = tmp_path / "kb"
    shutil.copytree(sample, path)
    with Workspace.open(path) as ws:
        version = _promote(ws)  # no storage yet: the version lives only here
    shared = tmp_path / "share"
    _configure(path, {"url": shared.as_uri() + "/datawheel"})
    runner = CliRunner()
    done = runner.invoke(app, ["storage", "sync", "-w", str(path)])
    assert done.exit_code == 0, done.output
    assert "up to date" in done.output
    assert (shared / "datawheel" / "models" / version / "model.json").is_file()
    unset = tmp_path / "plain"
    shutil.copytree(sample, unset)
    refused = runner.invoke(app, ["storage", "sync", "-w", str(unset)])
    assert refused.exit_code == 2 and "set storage.url" in refused.output
