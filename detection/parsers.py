from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework.parsers import BaseParser, DataAndFiles

from vision.errors import ImageTooLarge


def too_many_bytes(size: int) -> ImageTooLarge:
    limit = settings.MAX_UPLOAD_BYTES
    return ImageTooLarge(f"The upload is {size} bytes; the limit is {limit} bytes.")


class ImageBodyParser(BaseParser):
    """A raw image body (curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'), as the field 'image'."""

    media_type = "image/*"

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        limit = settings.MAX_UPLOAD_BYTES
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise too_many_bytes(len(data))
        image = SimpleUploadedFile("upload", data, content_type=media_type)
        return DataAndFiles(QueryDict(), MultiValueDict({"image": [image]}))
