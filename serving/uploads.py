"""Reading image uploads: a multipart field, or the raw body with an image content type."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from serving.errors import APIError, bad_parameter, out_of_range

RAW_TYPES = ("application/octet-stream",)


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported(kind: str) -> APIError:
    return APIError(
        415,
        "unsupported_media_type",
        f"unsupported Content-Type {kind or '(none)'}: send multipart/form-data with a field "
        "'file', or the raw image with Content-Type image/* or application/octet-stream",
    )


async def _form(request: Request, max_files: int):
    try:
        return await request.form(max_files=max_files, max_fields=16)
    except HTTPException as exc:  # python-multipart / Starlette parse errors are 400s
        if str(exc.detail).startswith("Too many files"):
            raise out_of_range(f"at most {max_files} file(s) per request") from None
        raise APIError(
            400, "malformed_multipart", f"malformed multipart body: {exc.detail}"
        ) from None


async def _file_upload(field_name: str, value: object) -> Upload:
    if not isinstance(value, UploadFile):
        raise bad_parameter(f"multipart field {field_name!r} must be a file, not a text value")
    try:
        return Upload(value.filename, await value.read())
    finally:
        await value.close()


async def read_image(request: Request) -> Upload:
    """The one image of a predict / explain request."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        form = await _form(request, max_files=1)
        if "file" not in form:
            raise bad_parameter("multipart body has no field 'file'")
        return await _file_upload("file", form["file"])
    if kind.startswith("image/") or kind in RAW_TYPES:
        return Upload(None, await request.body())
    raise _unsupported(kind)


async def read_images(request: Request, max_files: int) -> list[Upload]:
    """All files of a batch request (fields ``files`` or ``file``), in order."""
    kind = media_type(request)
    if kind != "multipart/form-data":
        raise _unsupported(kind)
    form = await _form(request, max_files=max_files)
    values = [value for key, value in form.multi_items() if key in ("files", "file")]
    if not values:
        raise bad_parameter("multipart body has no field 'files' (or 'file')")
    return [await _file_upload("files", value) for value in values]
