"""Object storage: S3, MinIO or any fsspec URL, for originals and model versions.

The workspace folder is the embedded default; ``storage.url`` in ``datawheel.yaml`` adds a
copy in a bucket, so a fresh worker or another machine can fetch what it lacks:

    storage:
      url: s3://acme-datawheel/prod          # or file:///mnt/share/datawheel, gs://...
      endpoint_url: http://minio:9000        # S3-compatible servers; unset: AWS S3
      key: env:DATAWHEEL_S3_KEY
      secret: env:DATAWHEEL_S3_SECRET

Every failure becomes a ``StorageError`` that says which setting to fix: a bucket that does
not exist, refused credentials, an endpoint that cannot be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datawheel.errors import ConfigError, MissingExtraError, StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Error codes (S3 and S3-compatible servers) that mean the key or secret is wrong.
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "403",
    "Forbidden",
}
_DENIED = {"AccessDenied", "AllAccessDisabled"}
#: Exception class names (botocore, aiohttp) that mean the server could not be reached.
_UNREACHABLE = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ReadTimeoutError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ConnectionError",  # the builtin and botocore's
    "TimeoutError",
}
_S3 = ("s3", "s3a")


class StorageConfig(BaseModel):
    """The ``storage:`` section of ``datawheel.yaml``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    url: str | None = Field(
        None,
        description="Also keep originals and model versions here: s3://bucket/prefix (AWS "
        "S3, MinIO, any S3-compatible server; extra [s3]) or any fsspec URL such as "
        "file:///mnt/share/datawheel. Unset: the workspace folder only.",
    )
    endpoint_url: str | None = Field(
        None, description="S3-compatible server, e.g. http://minio:9000; unset: AWS S3."
    )
    key: str | None = Field(
        None,
        description="Access key id, as env:VAR_NAME; unset: the AWS defaults "
        "(AWS_ACCESS_KEY_ID, ~/.aws/credentials).",
    )
    secret: str | None = Field(
        None, description="Secret access key as env:VAR_NAME (never the secret itself)."
    )
    region: str | None = Field(None, description="Region, e.g. eu-west-1 (MinIO: us-east-1).")
    timeout_s: float = Field(10.0, gt=0, description="Connect and read timeout per request.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="More fsspec storage options, passed as they are (e.g. token for gs://).",
    )

    @field_validator("secret")
    @classmethod
    def _secret_by_reference(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("env:"):
            raise ValueError(
                "write the secret as env:VAR_NAME and export VAR_NAME; a secret never "
                "goes into datawheel.yaml"
            )
        return value


class ObjectStore:
    """Files under one URL. Cheap to construct: the filesystem is opened on first use.

    Keys are ``/``-separated paths under the URL (``originals/<sha256>/report.pdf``).

    Example:
        >>> objects = ObjectStore(StorageConfig(url="s3://acme/datawheel"))
        >>> objects.put_file(Path("report.pdf"), "originals/ab12.../report.pdf")
        's3://acme/datawheel/originals/ab12.../report.pdf'
    """

    def __init__(self, config: StorageConfig) -> None:
        if not config.url:
            raise ConfigError("storage.url is not set; object storage is off")
        self.config = config
        self.url = config.url.rstrip("/")
        parts = urlsplit(self.url)
        self.scheme = parts.scheme or "file"
        self.bucket = parts.netloc if self.scheme in _S3 else ""
        if self.scheme in _S3 and not self.bucket:
            raise ConfigError(
                f"storage.url {config.url!r} names no bucket; write s3://BUCKET/prefix"
            )
        self._fs: Any = None
        self._root = ""

    # -- operations -----------------------------------------------------------------------

    def object_url(self, key: str) -> str:
        return f"{self.url}/{key}"

    def put_file(self, local: Path, key: str) -> str:
        """Copy a local file to ``key``; returns its object URL."""
        self._call("upload", key, lambda fs, path: fs.put_file(str(local), path))
        return self.object_url(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        self._call("write", key, lambda fs, path: fs.pipe_file(path, data))
        return self.object_url(key)

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        self._call("download", key, lambda fs, path: fs.get_file(path, str(local)))

    def get_bytes(self, key: str) -> bytes:
        data: bytes = self._call("read", key, lambda fs, path: fs.cat_file(path))
        return data

    def check(self) -> None:
        """Write, read back and delete a small object: StorageError says what is wrong."""
        key = ".datawheel-check"
        self.put_bytes(key, b"ok")
        if self.get_bytes(key) != b"ok":
            raise StorageError(f"{self.object_url(key)} read back different bytes than written")
        self._call("delete", key, lambda fs, path: fs.rm_file(path))

    # -- the filesystem and its errors ----------------------------------------------------

    def _call(self, action: str, key: str, op: Callable[[Any, str], T]) -> T:
        fs = self._filesystem()
        path = f"{self._root}/{key}" if self._root else key
        try:
            return op(fs, path)
        except StorageError:
            raise
        except Exception as exc:
            raise self.explain(exc, action, self.object_url(key)) from exc

    def _filesystem(self) -> Any:
        if self._fs is None:
            if self.scheme in _S3:
                try:
                    import s3fs  # noqa: F401
                except ImportError as exc:
                    raise MissingExtraError("S3 object storage (s3fs)", "s3") from exc
            from fsspec.core import url_to_fs

            try:
                fs, root = url_to_fs(self.url, **self._options())
            except ImportError as exc:  # gs://, az://, ... without their fsspec package
                raise ConfigError(f"storage.url {self.url}: {exc}") from exc
            except ValueError as exc:
                raise ConfigError(f"storage.url {self.url} is not a usable URL: {exc}") from exc
            self._fs, self._root = fs, root.rstrip("/")
        return self._fs

    def _options(self) -> dict[str, Any]:
        from datawheel.config import resolve_secret

        cfg = self.config
        if self.scheme in ("file", "local"):
            return {"auto_mkdir": True, **cfg.options}
        if self.scheme not in _S3:
            return dict(cfg.options)
        options: dict[str, Any] = {
            # s3fs retries connection errors itself; botocore retries throttling.
            "config_kwargs": {
                "connect_timeout": cfg.timeout_s,
                "read_timeout": cfg.timeout_s,
                "retries": {"max_attempts": 3, "mode": "standard"},
            },
        }
        if cfg.key:
            options["key"] = resolve_secret(cfg.key)
        if cfg.secret:
            options["secret"] = resolve_secret(cfg.secret)
        if cfg.endpoint_url:
            options["endpoint_url"] = cfg.endpoint_url
        if cfg.region:
            options["client_kwargs"] = {"region_name": cfg.region}
        return options | cfg.options

    def explain(self, exc: BaseException, action: str, target: str) -> StorageError:
        """Turn a filesystem or botocore error into a StorageError that names the fix."""
        code = _error_code(exc)
        text = str(exc)
        where = self._where()
        if code == "NoSuchBucket" or "bucket does not exist" in text.lower():
            flag = f" --endpoint-url {self.config.endpoint_url}" if self.config.endpoint_url else ""
            return StorageError(
                f"bucket {self.bucket!r} does not exist{where}; create it first (aws s3 mb "
                f"s3://{self.bucket}{flag}, or mc mb ALIAS/{self.bucket} on MinIO) or fix "
                "storage.url in datawheel.yaml",
                "no_bucket",
            )
        if code in _BAD_CREDENTIALS or _has_class(exc, {"NoCredentialsError"}):
            return StorageError(
                f"the object store{where} refused the credentials ({code or type(exc).__name__}"
                f": {text}); check {self._credentials()}",
                "credentials",
            )
        if code in _DENIED:
            return StorageError(
                f"access denied: the credentials ({self._credentials()}) may not {action} "
                f"{target}{where}; allow them s3:GetObject, s3:PutObject and s3:ListBucket "
                f"on bucket {self.bucket!r}",
                "credentials",
            )
        if _has_class(exc, _UNREACHABLE):
            return StorageError(
                f"cannot reach the object store{where}: {text}; check storage.endpoint_url "
                "in datawheel.yaml and that the server is running",
                "unreachable",
            )
        if isinstance(exc, FileNotFoundError) or code in ("NoSuchKey", "404"):
            return StorageError(f"{target} is not in object storage", "missing")
        return StorageError(f"could not {action} {target}: {type(exc).__name__}: {text}")

    def _where(self) -> str:
        if self.scheme not in _S3:
            return f" at {self.url}"
        return f" at {self.config.endpoint_url}" if self.config.endpoint_url else " on AWS S3"

    def _credentials(self) -> str:
        named = []
        cfg = self.config
        for setting, value in (("storage.key", cfg.key), ("storage.secret", cfg.secret)):
            if value and value.startswith("env:"):
                named.append(f"{setting} (environment variable {value[4:]})")
            elif value:
                named.append(setting)
        if not named:
            return (
                "the AWS credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
                "~/.aws/credentials, or set storage.key and storage.secret in datawheel.yaml"
            )
        return " and ".join(named) + " in datawheel.yaml"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _error_code(exc: BaseException) -> str:
    """The S3 error code (``NoSuchBucket``, ``InvalidAccessKeyId``...) behind an error."""
    for err in _chain(exc):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return ""


def _has_class(exc: BaseException, names: set[str]) -> bool:
    return any(cls.__name__ in names for err in _chain(exc) for cls in type(err).__mro__)
