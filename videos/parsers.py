import shutil

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from rest_framework.parsers import BaseParser, DataAndFiles

from videos.services import too_many_video_bytes

CHUNK_BYTES = 1024 * 1024


class VideoBodyParser(BaseParser):
    """A raw video body (curl --data-binary @clip.mp4 -H 'Content-Type: video/mp4'), as the field
    'video': copied to a temporary file a chunk at a time, never held whole in memory."""

    media_type = "video/*"

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        limit = settings.MAX_VIDEO_BYTES
        video = TemporaryUploadedFile("upload", media_type, 0, None)
        try:
            if stream is not None:
                shutil.copyfileobj(stream, video, CHUNK_BYTES)
            video.size = video.tell()
            if video.size > limit:
                raise too_many_video_bytes(video.size)
        except BaseException:
            video.close()  # removes the temporary file
            raise
        video.seek(0)
        return DataAndFiles(QueryDict(), MultiValueDict({"video": [video]}))
