"""A camera for the tests and `make bench-cameras`: GStreamer's RTSP server playing an H.264 MP4 in an
endless loop at rtsp://127.0.0.1:PORT/cam, in real time, each client from the clip's start.

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


def loop_forever(factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    """Segment seeks: at the clip's end the demuxer starts over without an end of stream, and the
    timestamps run on, as a camera's do. The first is made once the media plays: made while the
    server answers PLAY, it crossed the server's own seek (an assertion in gst_rtsp_media_get_rates)."""
    demuxer = media.get_element().get_by_name("demux")
    looping = False

    def seek(flags: Gst.SeekFlags) -> bool:
        demuxer.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
        return False  # once, as an idle callback

    def new_state(media: GstRtspServer.RTSPMedia, state: int) -> None:
        nonlocal looping
        if state != Gst.State.PLAYING or looping:
            return
        looping = True
        bus = media.get_element().get_parent().get_bus()
        bus.enable_sync_message_emission()
        bus.connect("sync-message::segment-done", lambda bus, message: GLib.idle_add(seek, Gst.SeekFlags.SEGMENT))
        GLib.idle_add(seek, Gst.SeekFlags.SEGMENT | Gst.SeekFlags.FLUSH)

    media.connect("new-state", new_state)


def main(port: str, clip: str) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{clip}" ! qtdemux name=demux ! h264parse ! rtph264pay name=pay0 pt=96 )')
    factory.connect("media-configure", loop_forever)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(*sys.argv[1:])
