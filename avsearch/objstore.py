"""The object store under an `s3://` / `gs://` / `az://` index: its settings, and the few plain
files avsearch keeps there itself (avsearch.json), read and written through pyarrow.fs.

Lance reads its credentials and endpoint from the environment (AWS_*, GOOGLE_*, AZURE_*) and
takes more in `storage_options`; `AVSEARCH_STORAGE_OPTIONS` (a JSON object of Lance's option
names, such as {"aws_endpoint": "http://127.0.0.1:9000", "allow_http": "true"}) adds to them.
The same settings are turned into pyarrow's file system arguments here (S3 and Azure; a gs://
index's metadata file is read with pyarrow's GCS defaults and the environment's credentials, so
give GCS credentials through the environment, not only as options). Light: pyarrow.fs and the standard library only.
"""

from __future__ import annotations

import json
import os
import re
from typing import Optional

from avsearch.errors import AvsearchError, UsageError

OPTIONS_ENV = "AVSEARCH_STORAGE_OPTIONS"


class ObjectStoreError(AvsearchError, OSError):
    """The object store under an index cannot be reached or used (no bucket, no credentials...)."""


def storage_options() -> dict[str, str]:
    """Lance's storage options from $AVSEARCH_STORAGE_OPTIONS ({} when unset)."""
    text = os.environ.get(OPTIONS_ENV, "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
    except ValueError as err:
        raise UsageError(f"{OPTIONS_ENV} is not JSON ({err}); give an object such as "
                         '{"aws_endpoint": "http://127.0.0.1:9000", "allow_http": "true"}') from None
    if not isinstance(options, dict):
        # (its text is not echoed: it may hold keys)
        raise UsageError(f"{OPTIONS_ENV} must be a JSON object of option names and values, not a {type(options).__name__}")
    return {str(k).lower(): str(v) for k, v in options.items()}


def _option(options: dict[str, str], names: tuple[str, ...], env: tuple[str, ...]) -> Optional[str]:
    """A setting as Lance would find it: a storage option by any of its names, else the environment."""
    for name in names:
        if options.get(name):
            return options[name]
    for name in env:
        if os.environ.get(name):
            return os.environ[name]
    return None


def filesystem(uri: str):
    """(pyarrow FileSystem, path inside it) of `uri`, configured like Lance's view of it."""
    from pyarrow import fs

    scheme, rest = uri.split("://", 1)
    options = storage_options()
    if scheme == "s3":
        endpoint = _option(options, ("aws_endpoint", "aws_endpoint_url", "endpoint", "endpoint_url"),
                           ("AWS_ENDPOINT_URL", "AWS_ENDPOINT"))
        kwargs = dict(
            region=_option(options, ("aws_region", "region"), ("AWS_REGION", "AWS_DEFAULT_REGION")),
            endpoint_override=endpoint,
            access_key=_option(options, ("aws_access_key_id", "access_key_id"), ()),
            secret_key=_option(options, ("aws_secret_access_key", "secret_access_key"), ()),
            session_token=_option(options, ("aws_session_token", "session_token"), ()),
            # Never minutes of retries: an unreachable endpoint is an error to show at once.
            connect_timeout=5, request_timeout=30, retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=3),
        )
        if not kwargs["access_key"]:  # pyarrow's own chain: the environment, ~/.aws, instance roles
            kwargs.pop("access_key"), kwargs.pop("secret_key"), kwargs.pop("session_token")
        return fs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None}), rest
    if scheme == "gs":
        return fs.GcsFileSystem(), rest  # credentials: GOOGLE_APPLICATION_CREDENTIALS or the metadata server
    if scheme == "az":
        account = _option(options, ("azure_storage_account_name", "account_name"), ("AZURE_STORAGE_ACCOUNT_NAME",))
        key = _option(options, ("azure_storage_account_key", "account_key"), ("AZURE_STORAGE_ACCOUNT_KEY",))
        if not account:
            raise ObjectStoreError(f"{uri}: name the Azure storage account in AZURE_STORAGE_ACCOUNT_NAME "
                                   "(and its key in AZURE_STORAGE_ACCOUNT_KEY, or sign in with the Azure CLI)")
        return fs.AzureFileSystem(account_name=account, account_key=key), rest
    raise UsageError(f"{uri}: no object store avsearch knows (s3://, gs://, az://)")


def check_reachable(uri: str) -> None:
    """Raise ObjectStoreError, naming the fix, unless the bucket of `uri` can be reached: called
    before an index there is opened or created, so a typo in the bucket, a missing credential or
    a wrong endpoint answers at once, not after a model loads or as a damaged-table error."""
    _check_http(uri)
    filesystem_, path = filesystem(uri)
    bucket = path.split("/", 1)[0]
    try:
        found = filesystem_.get_file_info(bucket)
    except OSError as err:
        raise ObjectStoreError(explain(uri, err) + _no_credentials(uri)) from None
    if found.type.name == "NotFound":
        raise ObjectStoreError(f"{uri}: the bucket {bucket!r} does not exist (or these credentials cannot see it); "
                               "create it, or fix the bucket name in --index")


def _no_credentials(uri: str) -> str:
    """A sentence when no S3 credentials are set anywhere the AWS clients look (an instance role
    may still provide them, so this only adds to an error, never refuses by itself)."""
    if not uri.startswith("s3://"):
        return ""
    if _option(storage_options(), ("aws_access_key_id", "access_key_id"), ("AWS_ACCESS_KEY_ID",)):
        return ""
    if any(os.environ.get(v) for v in ("AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")):
        return ""
    if any(os.path.isfile(os.path.expanduser(f)) for f in ("~/.aws/credentials", "~/.aws/config")):
        return ""
    return (". No AWS credentials are set (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in ~/.aws, "
            f"or \"aws_access_key_id\" in {OPTIONS_ENV}): set them, unless this machine has a role")


def _check_http(uri: str) -> None:
    """Lance refuses a plain-http endpoint unless allowed (pyarrow would not): say so first."""
    if not uri.startswith("s3://"):
        return
    options = storage_options()
    endpoint = _option(options, ("aws_endpoint", "aws_endpoint_url", "endpoint", "endpoint_url"),
                       ("AWS_ENDPOINT_URL", "AWS_ENDPOINT")) or ""
    allowed = _option(options, ("allow_http", "aws_allow_http"), ("AWS_ALLOW_HTTP",)) or ""
    if endpoint.lower().startswith("http://") and allowed.lower() != "true":
        raise ObjectStoreError(f"{uri}: the endpoint {endpoint} is plain http, which Lance refuses unless told: "
                               f"set AWS_ALLOW_HTTP=true (or \"allow_http\": \"true\" in {OPTIONS_ENV}), or use https")


def read_text(uri: str) -> Optional[str]:
    """The text of the object at `uri`, or None when there is none."""
    filesystem_, path = filesystem(uri)
    try:
        if filesystem_.get_file_info(path).type.name == "NotFound":
            return None
        with filesystem_.open_input_stream(path) as f:
            return f.read().decode()
    except OSError as err:
        raise ObjectStoreError(explain(uri, err)) from None


def write_text(uri: str, text: str) -> None:
    """Write `text` as the object at `uri` (one PUT: readers see the old or the new whole)."""
    filesystem_, path = filesystem(uri)
    try:
        with filesystem_.open_output_stream(path) as f:
            f.write(text.encode())
    except OSError as err:
        raise ObjectStoreError(explain(uri, err)) from None


def total_bytes(uri: str) -> int:
    """The size of every object under `uri`."""
    from pyarrow import fs

    filesystem_, path = filesystem(uri)
    try:
        infos = filesystem_.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as err:
        raise ObjectStoreError(explain(uri, err)) from None
    return sum(i.size or 0 for i in infos if i.type == fs.FileType.File)


# What S3, GCS and Azure clients (pyarrow's and Lance's) say, and what to do about it.
_CAUSES = (
    (("no_such_bucket", "nosuchbucket", "bucket does not exist", "bucket not found", "containernotfound"),
     "the bucket does not exist: create it, or fix the bucket name in --index"),
    (("access_denied", "accessdenied", "invalid_access_key", "invalidaccesskeyid", "signature_does_not_match",
      "signaturedoesnotmatch", "forbidden", "unauthorized", "credential", "expiredtoken",
      "status: 403", "status: 401"),
     "the credentials were refused or are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
     "(GOOGLE_APPLICATION_CREDENTIALS for gs://, AZURE_STORAGE_ACCOUNT_KEY for az://), or a profile, "
     "with read and write access to the bucket"),
    (("badscheme",), "the endpoint is plain http: set AWS_ALLOW_HTTP=true (or \"allow_http\": \"true\" in "
     f"{OPTIONS_ENV}), or use https"),
    (("network_connection", "could not connect", "couldn't connect", "connection refused", "resolve host",
      "dns error", "timed out", "timeout", "error sending request", "tcp connect"),
     "the object store cannot be reached: check the network, and the endpoint (AWS_ENDPOINT_URL, or "
     f"\"aws_endpoint\" in {OPTIONS_ENV}; an http:// endpoint also needs AWS_ALLOW_HTTP=true)"),
)


def cause(err: BaseException) -> Optional[str]:
    """What to do about an object-store error, or None when it is not one we know."""
    text = str(err).lower()
    for needles, advice in _CAUSES:
        if any(n in text for n in needles):
            return advice
    return None


def explain(uri: str, err: BaseException) -> str:
    first = re.sub(r"\s*\(Request ID: [^)]*\)", "", str(err).strip().splitlines()[0] if str(err).strip() else "")
    return f"{uri}: {cause(err) or 'the object store refused the request'} ({type(err).__name__}: {first[:300]})"
