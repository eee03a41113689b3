"""Object storage for collections: LanceDB storage options, and failures a user can act on.

``lancedb_uri`` may point at object storage (``s3://bucket/prefix``, ``gs://``, ``az://``).
Its options come from two settings, never from secrets written in a file:

- ``lancedb_storage_options``: plain values (``aws_endpoint``, ``aws_region``,
  ``allow_http``, ``timeout``...); the settings refuse credential-like names here;
- ``lancedb_storage_env``: option -> NAME of the environment variable holding its value
  (``aws_secret_access_key = "TEAM_S3_SECRET"``), read each time a database is opened.

Without either, LanceDB reads the platform's own variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``...) and instance or
workload identity, as the AWS/GCP/Azure SDKs do.

Object-store failures surface from LanceDB as long Rust error dumps (a ``ValueError`` or
``OSError`` whose text can include request URLs and server replies). :func:`explain` turns
the three a deployment meets first (a missing bucket, refused credentials, an unreachable
endpoint) into an :class:`ObjectStoreError` that says what to fix, built only from the
URI, the endpoint and the store's error code, never from the raw reply (an S3
``SignatureDoesNotMatch`` reply echoes the access key id and the string it signed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from workbench.config import Settings
from workbench.errors import ConfigError, WorkbenchError

# Schemes LanceDB hands to an object store (db:// is LanceDB Cloud: its own client).
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3+ddb", "gs", "az", "abfs", "abfss"})
_ENDPOINT_OPTIONS = ("aws_endpoint", "aws_endpoint_url", "endpoint", "endpoint_url",
                     "azure_storage_endpoint", "google_storage_endpoint")
_ENDPOINT_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT")

_MISSING_BUCKET = re.compile(r"NoSuchBucket|ContainerNotFound|bucket does not exist")
_CREDENTIALS = re.compile(
    r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|InvalidToken|ExpiredToken|"
    r"AuthenticationFailed|AuthorizationFailure|Failed to get AWS credentials|"
    r"status: 40[13]\b")
_UNREACHABLE = re.compile(r"ConnectError|dns error|tcp connect error|kind: Timeout|TimedOut|"
                          r"Connection refused|error trying to connect|kind: Connect\b")
_S3_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")


class ObjectStoreError(WorkbenchError):
    """The object store behind ``lancedb_uri`` refused or could not be reached (HTTP 503)."""

    status = 503
    type = "storage_error"
    code = "object_store_error"


def is_object_store(uri: str) -> bool:
    """True for URIs LanceDB opens through an object store (s3://, gs://, az://...)."""
    return uri.split("://", 1)[0].lower() in OBJECT_STORE_SCHEMES if "://" in uri else False


def storage_options(settings: Settings, environ: Mapping[str, str] | None = None
                    ) -> dict[str, str]:
    """The LanceDB ``storage_options`` for ``settings.lancedb_uri``: plain values from
    ``lancedb_storage_options`` plus values read from the variables ``lancedb_storage_env``
    names. A named variable that is unset is a :class:`ConfigError` naming the variable."""
    env = os.environ if environ is None else environ
    options = dict(settings.lancedb_storage_options)
    unset = []
    for option, var in settings.lancedb_storage_env.items():
        value = env.get(var)
        if value is None or value == "":
            unset.append(f"{var} (for {option})")
        else:
            options[option] = value
    if unset:
        raise ConfigError(f"lancedb_storage_env names environment variables that are not set: "
                          f"{', '.join(unset)}; export them (from your secret store) or remove "
                          "them from lancedb_storage_env")
    return options


def endpoint(options: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str:
    """The endpoint requests go to, for messages: without any userinfo part."""
    env = os.environ if environ is None else environ
    raw = next((options[k] for k in _ENDPOINT_OPTIONS if options.get(k)), None) or next(
        (env[k] for k in _ENDPOINT_ENV if env.get(k)), None)
    if not raw:
        return "the provider's default endpoint"
    parts = urlsplit(raw)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _bucket(uri: str) -> str:
    return urlsplit(uri).netloc or uri


def explain(exc: BaseException, uri: str, options: Mapping[str, str]) -> ObjectStoreError | None:
    """An actionable error for a LanceDB object-store failure, or None when ``exc`` is not
    one of the failures recognised here (the caller re-raises it unchanged)."""
    if not is_object_store(uri):
        return None
    text = str(exc)
    where = endpoint(options)
    code_match = _S3_CODE.search(text)
    code = f" ({code_match.group(1)})" if code_match else ""
    if _MISSING_BUCKET.search(text):
        return ObjectStoreError(
            f"bucket {_bucket(uri)!r} does not exist at {where} (lancedb_uri {uri}): create "
            "it, or point lancedb_uri at an existing bucket", code="bucket_not_found")
    if _CREDENTIALS.search(text):
        return ObjectStoreError(
            f"the object store at {where} refused the credentials for {uri}{code}: check the "
            "access key and secret (the variables named in lancedb_storage_env, or "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and that they may read and write "
            "this bucket", code="object_store_auth_failed")
    if "BadScheme" in text or "URL scheme is not allowed" in text:
        return ObjectStoreError(
            f"the object store endpoint {where} is plain http: set allow_http = \"true\" in "
            "lancedb_storage_options (or use https)", code="object_store_unreachable")
    if _UNREACHABLE.search(text):
        return ObjectStoreError(
            f"cannot reach the object store at {where} for {uri}: check the endpoint "
            "(aws_endpoint in lancedb_storage_options, or AWS_ENDPOINT_URL), that it is up, "
            "and the network between here and there", code="object_store_unreachable")
    return None


@contextmanager
def object_store_errors(uri: str, options: Mapping[str, str]) -> Iterator[None]:
    """Turn the object-store failures :func:`explain` recognises into ObjectStoreError."""
    try:
        yield
    except (ValueError, OSError, RuntimeError) as exc:
        err = explain(exc, uri, options)
        if err is None:
            raise
        raise err from None


__all__ = ["OBJECT_STORE_SCHEMES", "ObjectStoreError", "endpoint", "explain",
           "is_object_store", "object_store_errors", "storage_options"]
