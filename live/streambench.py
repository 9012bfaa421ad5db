"""`make bench-stream`: live streams against the real server (./entrypoint.sh, as bench-load starts it).

Real clients replay a clip made from the dev photos (a camera panning across them, H.264, its frames
sent as JPEGs as the page sends them) over /stream, each as fast as its answers come back (one frame in
flight), with 1, 2 and 4 streams at once, at 640x480 and 1280x720. With four 640x480 streams, paced
uploads run beside them (against the same uploads on the idle server) and a /faces client counts their
broadcasts. A soak keeps two streams going and samples the server's memory.
"""

import asyncio
import io
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
from websockets.asyncio.client import connect

from detection.loadbench import (
    Log,
    Photo,
    Server,
    cpu_model,
    cpu_seconds,
    downscaled,
    memory,
    milliseconds,
    paced_uploads,
    running_server,
    uploaders,
)
from vision.clips import jpeg_frames, pan_frames
from vision.video import write_h264

SIZES = ((640, 480), (1280, 720))
CLIP_PHOTOS = 8  # photos panned across, one after the other
CLIP_FPS = 25
FRAMES_PER_PHOTO = CLIP_FPS  # a second of video each
SOAK_STREAMS = 2
SOAK_SAMPLE_SECONDS = 10
# The targets, on this 2-core machine.
ONE_STREAM_FPS, ONE_STREAM_P95_MS = 30, 50
FOUR_STREAMS_FPS, FOUR_STREAMS_P95_MS = 12, 150
UPLOAD_SLOWDOWN = 2.0  # uploads' p95 beside four streams, against idle
SOAK_GROWTH_MB = 10


@dataclass(frozen=True)
class StreamBenchConfig:
    photos: list[Path]
    streams: list[int]  # streams at once, one level each
    seconds: float  # per level
    profile: str
    uploads: int  # beside four streams, and on the idle server
    upload_interval: float
    soak_seconds: float


def clip_frames(photos: list[Path], width: int, height: int) -> list[bytes]:
    """The replayed clip: a pan across each photo, encoded as H.264, decoded, and sent as JPEGs."""
    frames = (
        frame
        for path in photos[:CLIP_PHOTOS]
        for frame in pan_frames(cv2.imread(str(path)), width=width, height=height, frames=FRAMES_PER_PHOTO)
    )
    clip = io.BytesIO()
    write_h264(clip, frames, fps=CLIP_FPS, keyframe_interval=CLIP_FPS)
    return jpeg_frames(clip.getvalue())


def stream_url(server: Server) -> str:
    return server.ws_url.removesuffix("/faces") + "/stream"


async def replay(url: str, frames: list[bytes], profile: str, until: float, offset: int) -> dict:
    """One stream: a frame, its answer, the next frame, until `until` (monotonic)."""
    round_trips, detect, waited, dropped, errors = [], [], [], 0, 0
    async with connect(url, proxy=None, max_size=None) as socket:
        await socket.recv()  # stream.ready
        await socket.send(json.dumps({"type": "options", "profile": profile}))
        await socket.recv()
        started = time.monotonic()
        index = offset
        while time.monotonic() < until:
            sent = time.monotonic()
            await socket.send(frames[index % len(frames)])
            answer = json.loads(await socket.recv())
            index += 1
            if answer["type"] != "frame.faces":
                errors += 1
                continue
            round_trips.append((time.monotonic() - sent) * 1000)
            detect.append(answer["detect_ms"])
            waited.append(answer["waited_ms"])
            dropped += answer["dropped"]
        elapsed = time.monotonic() - started
    return {
        "fps": round(len(round_trips) / elapsed, 1),
        "round_trip_ms": milliseconds(round_trips),
        "detect_ms": milliseconds(detect),
        "waited_ms": milliseconds(waited),
        "dropped": dropped,
        "errors": errors,
    }


async def stream_level(server: Server, frames: list[bytes], streams: int, config: StreamBenchConfig) -> dict:
    cpu_before, started = cpu_seconds(server.pids()), time.monotonic()
    until = started + config.seconds
    # Each stream starts at its own place in the clip, as different cameras would.
    offsets = [index * len(frames) // streams for index in range(streams)]
    results = await asyncio.gather(*(replay(stream_url(server), frames, config.profile, until, o) for o in offsets))
    wall = time.monotonic() - started
    return {
        "streams": streams,
        "per_stream": list(results),
        "server_cpu": round((cpu_seconds(server.pids()) - cpu_before) / wall, 2),  # cores busy
    }


async def listen_for_broadcasts(url: str, arrived: list[str], stop: asyncio.Event) -> None:
    async with connect(url, proxy=None, max_size=None) as socket:
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
            except TimeoutError:
                continue
            if message.get("type") == "detection.created":
                arrived.append(message["id"])


async def uploads_beside(
    server: Server, pool: ProcessPoolExecutor, photo: Photo, config: StreamBenchConfig, frames: list[bytes] | None
) -> dict:
    """Paced uploads, with four streams running beside them (`frames`) or none, and their broadcasts."""
    arrived: list[str] = []
    stop = asyncio.Event()
    listener = asyncio.create_task(listen_for_broadcasts(server.ws_url, arrived, stop))
    await asyncio.sleep(0.5)  # connected before the first upload
    streaming = None
    if frames is not None:
        until = time.monotonic() + config.uploads * config.upload_interval + 2
        offsets = [index * len(frames) // 4 for index in range(4)]
        streaming = asyncio.gather(*(replay(stream_url(server), frames, config.profile, until, o) for o in offsets))
        await asyncio.sleep(1)  # the streams under way
    uploads = await paced_uploads(pool, server.base_url, photo, config.uploads, config.upload_interval)
    streams = await streaming if streaming is not None else None
    await asyncio.sleep(1)
    stop.set()
    await listener
    created = [upload.detection_id for upload in uploads if upload.detection_id]
    return {
        "uploads": len(uploads),
        "created": len(created),
        "answer_ms": milliseconds([upload.answer_ms for upload in uploads]),
        "broadcasts_arrived": len(set(created) & set(arrived)),
        "streams": streams,
    }


async def soak(server: Server, frames: list[bytes], config: StreamBenchConfig, log: Log) -> dict:
    """Two streams for `soak_seconds`; the server's memory sampled from the end of the first minute on."""
    until = time.monotonic() + config.soak_seconds
    streaming = asyncio.gather(
        *(replay(stream_url(server), frames, config.profile, until, index * 37) for index in range(SOAK_STREAMS))
    )
    samples = []
    while (left := until - time.monotonic()) > 0:
        await asyncio.sleep(min(SOAK_SAMPLE_SECONDS, left))
        rss = sum(process["rss_mb"] for process in memory(server, "soak")["processes"])
        samples.append(rss)
        log(f"  soak: {config.soak_seconds - max(left - SOAK_SAMPLE_SECONDS, 0):.0f} s, RSS {rss:.1f} MiB")
    streams = await streaming
    warm = samples[min(len(samples) - 1, 60 // SOAK_SAMPLE_SECONDS) :]  # after a minute: caches filled
    return {
        "seconds": config.soak_seconds,
        "streams": streams,
        "rss_mb": samples,
        "growth_mb": round(warm[-1] - warm[0], 1) if warm else None,
    }


def run_stream_benchmark(config: StreamBenchConfig, log: Log) -> dict:
    clips = {f"{width}x{height}": clip_frames(config.photos, width, height) for width, height in SIZES}
    upload_photo = downscaled(Photo(config.photos[0].name, config.photos[0].read_bytes(), "image/jpeg"), 640)
    with (
        tempfile.TemporaryDirectory(prefix="bench-stream-") as root,
        running_server(Path(root), settings_env={"STREAM_MAX_PER_CLIENT": "100"}) as server,
        uploaders() as pool,
    ):
        # Warm-up: the model's first runs at each size of the stream's and the uploads' passes.
        asyncio.run(stream_level(server, clips["640x480"], 1, replace(config, seconds=2)))
        asyncio.run(paced_uploads(pool, server.base_url, upload_photo, 2, 0.1))
        levels = []
        for size, frames in clips.items():
            for streams in config.streams:
                log(f"{streams} stream(s) of {size} for {config.seconds:.0f} s")
                levels.append({"size": size, **asyncio.run(stream_level(server, frames, streams, config))})
        log(f"{config.uploads} uploads on the idle server, then beside four streams")
        idle = asyncio.run(uploads_beside(server, pool, upload_photo, config, None))
        beside = asyncio.run(uploads_beside(server, pool, upload_photo, config, clips["640x480"]))
        soaked = None
        if config.soak_seconds:
            log(f"soak: {SOAK_STREAMS} streams for {config.soak_seconds:.0f} s")
            soaked = asyncio.run(soak(server, clips["640x480"], config, log))
    report = {
        "cpu": cpu_model(),
        "profile": config.profile,
        "levels": levels,
        "uploads": {"photo": upload_photo.name, "idle": idle, "beside_four_streams": beside},
        "soak": soaked,
    }
    return {**report, "targets": targets(report)}


def targets(report: dict) -> list[dict]:
    found = []

    def target(name: str, measured: float | None, limit: float, holds: bool) -> None:
        found.append({"name": name, "measured": measured, "limit": limit, "holds": holds})

    levels = {(level["size"], level["streams"]): level["per_stream"] for level in report["levels"]}
    if one := levels.get(("640x480", 1)):
        target("one 640x480 stream: frames per second", one[0]["fps"], ONE_STREAM_FPS, one[0]["fps"] >= ONE_STREAM_FPS)
        p95 = one[0]["round_trip_ms"]["p95"]
        target("one 640x480 stream: round trip p95 (ms)", p95, ONE_STREAM_P95_MS, p95 <= ONE_STREAM_P95_MS)
    if four := levels.get(("640x480", 4)):
        slowest = min(stream["fps"] for stream in four)
        target("four streams: slowest stream's fps", slowest, FOUR_STREAMS_FPS, slowest >= FOUR_STREAMS_FPS)
        worst = max(stream["round_trip_ms"]["p95"] for stream in four)
        target("four streams: worst round trip p95 (ms)", worst, FOUR_STREAMS_P95_MS, worst <= FOUR_STREAMS_P95_MS)
    uploads = report["uploads"]
    idle, beside = uploads["idle"]["answer_ms"]["p95"], uploads["beside_four_streams"]["answer_ms"]["p95"]
    limit = round(idle * UPLOAD_SLOWDOWN, 1)
    target("uploads beside four streams: answer p95 (ms)", beside, limit, beside <= limit)
    created = uploads["beside_four_streams"]["created"]
    target(
        "uploads beside four streams: all created and broadcast",
        uploads["beside_four_streams"]["broadcasts_arrived"],
        uploads["beside_four_streams"]["uploads"],
        created == uploads["beside_four_streams"]["uploads"] == uploads["beside_four_streams"]["broadcasts_arrived"],
    )
    if report["soak"]:
        growth = report["soak"]["growth_mb"]
        target(
            "soak of two streams: RSS growth (MiB)",
            growth,
            SOAK_GROWTH_MB,
            growth is not None and growth < SOAK_GROWTH_MB,
        )
    return found


def format_report(report: dict) -> str:
    lines = [
        f"CPU: {report['cpu']}; profile {report['profile']}; one frame in flight per stream",
        "",
        "size      streams  fps/stream (each)      round trip p50/p95/p99 ms"
        "   detect p50  wait p50  dropped  server CPU",
    ]
    for level in report["levels"]:
        streams = level["per_stream"]
        fps = "/".join(f"{stream['fps']:.1f}" for stream in streams)
        worst = max(streams, key=lambda stream: stream["round_trip_ms"]["p95"])["round_trip_ms"]
        detect = max(stream["detect_ms"]["p50"] for stream in streams)
        waited = max(stream["waited_ms"]["p50"] for stream in streams)
        lines.append(
            f"{level['size']:<9} {level['streams']:>7}  {fps:<22} "
            f"{worst['p50']:>6} / {worst['p95']:>6} / {worst['p99']:>6}   {detect:>9}  {waited:>8}  "
            f"{sum(stream['dropped'] for stream in streams):>7}  {level['server_cpu']:>8} cores"
        )
    uploads = report["uploads"]
    for phase, label in (("idle", "on the idle server"), ("beside_four_streams", "beside four streams")):
        result = uploads[phase]
        answer = result["answer_ms"]
        lines.append(
            f"uploads of {uploads['photo']} {label}: answer p50 {answer['p50']} ms, p95 {answer['p95']} ms; "
            f"{result['created']}/{result['uploads']} created, {result['broadcasts_arrived']} broadcasts arrived"
        )
    if report["soak"]:
        soak_report = report["soak"]
        lines.append(
            f"soak: {SOAK_STREAMS} streams for {soak_report['seconds']:.0f} s, RSS {soak_report['rss_mb'][0]} -> "
            f"{soak_report['rss_mb'][-1]} MiB, growth after the first minute {soak_report['growth_mb']} MiB"
        )
    lines += ["", "targets:"]
    for found in report["targets"]:
        verdict = "holds" if found["holds"] else "MISSED"
        lines.append(f"  {found['name']}: {found['measured']} (limit {found['limit']}) {verdict}")
    return "\n".join(lines)
