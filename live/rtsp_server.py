"""A camera for the tests and `make bench-cameras`: GStreamer's RTSP server playing an H.264 MP4 at
rtsp://127.0.0.1:PORT/cam in real time, as a camera sends it, each client from the clip's start. At
the clip's end the stream ends, as a camera's that goes away. (Looping it with segment seeks, the
usual way, hung the server's main loop now and then in GStreamer 1.22: clips are made long enough.)

FFmpeg cannot serve RTSP to clients that pull; GStreamer's RTSP server can. Its Python bindings are
Debian's (python3-gi, gir1.2-gst-rtsp-server-1.0), so this runs with Debian's own /usr/bin/python3,
not the project's virtualenv, isolated (-I: the folder beside it, live/selectors.py, would shadow
the standard library's):  /usr/bin/python3 -I live/rtsp_server.py PORT CLIP.mp4
It prints "ready" once it listens. The clip is sent as it is (no decoding or encoding here), so the
server costs next to nothing beside the watchers it serves.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402 (after require_version)


def main(port: str, clip: str) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{clip}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )')
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(*sys.argv[1:])
