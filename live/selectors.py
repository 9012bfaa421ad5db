"""Reads: which cameras a watcher has."""

from django.db.models import QuerySet
from django.db.models.functions import Mod

from live.models import Camera


def cameras_to_watch(*, shard: int = 1, shards: int = 1) -> QuerySet[Camera]:
    """The enabled cameras of shard `shard` of `shards` (1-based): those whose id leaves `shard` - 1
    divided by `shards`, so watchers started with 1/3, 2/3 and 3/3 share every camera once."""
    return Camera.objects.filter(enabled=True).alias(remainder=Mod("id", shards)).filter(remainder=shard - 1)
