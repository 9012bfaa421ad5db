import json
import tempfile
import time
from pathlib import Path

import cv2
from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.loadbench import free_port
from live.benchmark import (
    GStreamerMissing,
    decoding_table,
    machine,
    measure,
    measure_decoding,
    report_table,
    rtsp_camera,
    runs_as_json,
)
from vision.clips import pan_frames
from vision.video import write_h264

# A busy street of the dev sample: a 1080p pan over it keeps every macroblock moving.
PHOTO = "0_Parade_Parade_0_12.jpg"
# Each run is a new client, which the server plays the clip from its start: the clip outlasts a run.
RUN_MARGIN_SECONDS = 8


class Command(BaseCommand):
    help = "What watching cameras costs: K = 1, 2, 4, 8 cameras of a 1080p 25 fps H.264 RTSP stream sampled at 2 fps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", type=Path, default=Path("../shared/faces/dev"), help="The dev sample.")
        parser.add_argument("--cameras", default="1,2,4,8", help="Comma-separated camera counts.")
        parser.add_argument("--fps", type=float, default=2.0, help="Frames sampled per second per camera.")
        parser.add_argument("--profile", default="fast", help="The cameras' detector profile.")
        parser.add_argument("--seconds", type=float, default=15, help="Measured seconds per run.")
        parser.add_argument(
            "--keyframe-interval", type=int, default=25, help="Frames from keyframe to keyframe (25: 1 s)."
        )
        parser.add_argument("--output", type=Path, help="Write the results as JSON here.")

    def handle(self, *args: object, **options: object) -> None:
        photo = cv2.imread(str(options["dataset"] / "images" / PHOTO))
        if photo is None:
            raise CommandError(f"No {PHOTO} in {options['dataset']}/images (--dataset)")
        counts = [int(count) for count in str(options["cameras"]).split(",")]
        fps, profile = options["fps"], options["profile"]
        with tempfile.TemporaryDirectory() as folder:
            clip = Path(folder) / "camera.mp4"
            clip_seconds = round(options["seconds"]) + RUN_MARGIN_SECONDS
            self.stderr.write(f"Encoding a {clip_seconds} s 1080p 25 fps clip ...")
            frames = pan_frames(photo, width=1920, height=1080, frames=25 * clip_seconds)
            write_h264(clip, frames, fps=25, keyframe_interval=options["keyframe_interval"])
            try:
                with rtsp_camera(clip, port=free_port()) as url:
                    self.stderr.write("Decoding alone ...")
                    decoding = [
                        measure_decoding(url, fps=fps, decode_all=decode_all, seconds=options["seconds"])
                        for decode_all in (False, True)
                    ]
                    runs = []
                    for decode_all in (False, True):
                        for count in counts:
                            self.stderr.write(f"{count} camera(s), decoding {'all' if decode_all else 'needed'} ...")
                            runs.append(
                                measure(
                                    url,
                                    cameras=count,
                                    fps=fps,
                                    profile=profile,
                                    decode_all=decode_all,
                                    seconds=options["seconds"],
                                )
                            )
            except GStreamerMissing as error:
                raise CommandError(str(error)) from None
        about = machine()
        self.stdout.write(
            f"CPU: {about['cpu_model']}, {about['cores']} cores. Stream: 1920x1080 25 fps H.264, a keyframe every "
            f"{options['keyframe_interval']} frames; sampled at {fps:g} fps, profile {profile}.\n"
            "CPU per camera: this process's CPU time (decoding, detecting, everything) over the wall time, "
            "per camera, in % of one core.\n"
        )
        self.stdout.write(decoding_table(decoding) + "\n")
        self.stdout.write(report_table(runs, fps=fps))
        if options["output"]:
            report = {
                "date": time.strftime("%Y-%m-%d"),
                "machine": about,
                "stream": {"width": 1920, "height": 1080, "fps": 25, "keyframe_interval": options["keyframe_interval"]},
                "sample_fps": fps,
                "profile": profile,
                "decoding_alone": runs_as_json(decoding),
                "runs": runs_as_json(runs),
            }
            options["output"].write_text(json.dumps(report, indent=2) + "\n")
