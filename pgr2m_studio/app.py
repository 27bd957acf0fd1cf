"""Start the desktop app: ``python main.py [--screenshot PATH] [--quit-after MS]``."""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from pgr2m_studio.main_window import MainWindow


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="main.py", description="PGR²M Studio desktop app.")
    parser.add_argument("--screenshot", metavar="PATH",
                        help="save a PNG of the window once it is shown, then quit")
    parser.add_argument("--quit-after", metavar="MS", type=int,
                        help="quit after this many milliseconds")
    parser.add_argument("--model", metavar="DIR", help="model folder (default: the built-in model)")
    parser.add_argument("--prompt", help="generate this prompt once the model is loaded (for screenshots)")
    parser.add_argument("--seed", type=int, default=None, help="seed of --prompt")
    return parser.parse_known_args(argv)  # the rest goes to Qt (e.g. -platform xcb)


def grab_window(window: MainWindow) -> QImage:
    """The window as an image, with the 3D view drawn in.

    ``QWidget.grab()`` composites the OpenGL canvas on most platforms; where it comes back blank,
    the canvas is rendered offscreen with vispy and painted over its place.
    """
    image = window.grab().toImage()
    canvas_widget = window.viewport.canvas.native
    top_left = canvas_widget.mapTo(window, canvas_widget.rect().topLeft())
    ratio = image.devicePixelRatio()
    region = image.copy(int(top_left.x() * ratio), int(top_left.y() * ratio),
                        int(canvas_widget.width() * ratio), int(canvas_widget.height() * ratio))
    if _is_uniform(region):
        rgba = np.ascontiguousarray(window.viewport.canvas.render(alpha=False))
        h, w = rgba.shape[:2]
        fmt = QImage.Format_RGBA8888 if rgba.shape[2] == 4 else QImage.Format_RGB888
        rendered = QImage(rgba.data, w, h, rgba.strides[0], fmt).copy()
        painter = QPainter(image)
        painter.drawImage(canvas_widget.mapTo(window, canvas_widget.rect().topLeft()),
                          rendered.scaled(canvas_widget.size()))
        painter.end()
    return image


def _is_uniform(image: QImage) -> bool:
    image = image.convertToFormat(QImage.Format_RGBA8888)
    if image.isNull() or image.width() == 0 or image.height() == 0:
        return True
    arr = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    arr = arr.reshape(image.height(), image.bytesPerLine())[:, : image.width() * 4]
    return bool(arr.min() == arr.max()) or bool((arr.reshape(-1, 4)[:, :3] == arr[0, :3]).all())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, qt_args = parse_args(argv)

    QCoreApplication.setOrganizationName("PGR2M")
    QCoreApplication.setApplicationName("PGR2M Studio")
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])

    window = MainWindow(args.model)
    if not window.settings.contains("geometry"):
        window.resize(1280, 820)
    window.show()
    if args.prompt:
        def generate_when_ready():
            if window.pipeline is None:
                QTimer.singleShot(200, generate_when_ready)
                return
            window.panel.set_settings(args.prompt, None, 3, args.seed)
            window.panel.generate_button.click()
        generate_when_ready()
    elif not args.screenshot:
        QTimer.singleShot(0, window.offer_recovery)

    status = {"code": 0}
    # started unattended: nobody is there to answer "save the changes?", which would never close
    window.ask_before_close = not (args.screenshot or args.quit_after is not None)
    if args.screenshot:
        def take_screenshot() -> None:
            app.processEvents()
            window.viewport.canvas.update()
            app.processEvents()
            if not grab_window(window).save(args.screenshot, "PNG"):
                print(f"could not write {args.screenshot}", file=sys.stderr)
                status["code"] = 1
            else:
                print(f"screenshot saved to {args.screenshot}")
            window.close()

        def shoot_when_ready():
            # wait for the model and, with --prompt, for the generated motion
            if window.pipeline is None or (args.prompt and window.document.motion is None):
                QTimer.singleShot(200, shoot_when_ready)
                return
            window.playback.seek(window.playback.n_frames // 2)
            if args.prompt and hasattr(window.grid, "scroll_to_group"):
                from core import posecodes as pc

                arm = [g.index for g in pc.GROUPS if g.body_part == "right arm"]
                window.grid.scroll_to_group(arm[0] if arm else 0)
            QTimer.singleShot(500, take_screenshot)

        QTimer.singleShot(300, shoot_when_ready)
    if args.quit_after is not None:
        QTimer.singleShot(max(0, args.quit_after), window.close)

    code = app.exec()
    return status["code"] or code


if __name__ == "__main__":
    sys.exit(main())
